// Native GPU check: every Backend op on the GPU backend against the CPU backend (its scalar-exact
// reference), on fresh random data each run (the seed is printed; --seed N repeats a run).
// For each case: relative L2 error ||gpu - cpu|| / ||cpu||, NaN count, and unwritten outputs (the
// GPU output is poisoned with 0xFF bytes before the op; any element still 0xFFFFFFFF was never
// written). Exit status 1 if any case fails its tolerance, 2 if the GPU backend is unavailable.
//   gptoss_gpu_check [--quick] [--seed N]     (--quick: small shapes, for compute-sanitizer)
//   gptoss_gpu_check --bf16-experts [--quick] [--seed N]   (only the bf16 expert cases: loadModel's
//     experts: 'bf16', compiled and not yet run on a GPU, kept out of the default run until they pass)
//   gptoss_gpu_check --only-attn-mma [--quick] [--seed N]  (only the tensor-core decode attention cases)
//   gptoss_gpu_check --only-attn [--quick] [--seed N]  (every attention path: slot store, paged, prefill, both decode kernels)
//   gptoss_gpu_check --gemv [--quick] [--seed N]   (only the decode GEMVs under each GPTOSS_CUDA_GEMV /
//     GPTOSS_CUDA_GEMV_CTAS variant: scripts/gpu-gemv-ab.sh; out of the default run until they pass)
//   gptoss_gpu_check --moe-stream [--quick] [--seed N]   (only the streaming batch MoE, GPTOSS_CUDA_MOE_BATCH=stream:
//     moe_stream.cu on routes of 1..40 rows an expert, empty experts, E 32 and 128, and the stream rows of the
//     grouped / decode MoE cases: scripts/gpu-moe-batch-ab.sh; out of the default run until they pass)
// One source, two programs: gptoss_gpu_check (native/cuda/cuda.cmake) links the CUDA backend;
// gptoss_gpu_check_hip (native/hip/hip.cmake, GPTOSS_GPU_CHECK_HIP) asks for hip:0, which loads the
// ROCm runtime and the HIP plugin (gpt_oss_hip.so beside the executable) exactly as the addon does,
// so it checks the kernels the package ships. On HIP the MoE decode variants are the AMD ones (simt,
// mfma) and the mma-relaid layout (an mma.sync layout the AMD caps never choose) is left out.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#if !defined(GPTOSS_GPU_CHECK_HIP)
#include "cuda/device.h"  // device_caps (the GEMV notes); the HIP program reaches the caps only through the plugin
#endif
#include "cuda/policy.h"
#include "harness.h"
#include "hip/hip_loader.h"
#include "cuda/mxfp4_layout.h"

using namespace gptoss;
using namespace gptoss::gputest;
using gptoss::cuda::moe_uses_decode;
using gptoss::cuda::choose_gemv;
using gptoss::cuda::GemvFormat;
using gptoss::cuda::GemvKernel;
using gptoss::cuda::knobs;

namespace {

#if defined(GPTOSS_GPU_CHECK_HIP)
constexpr bool kHip = true;
#else
constexpr bool kHip = false;
#endif
const char* const kGpuName = kHip ? "hip" : "cuda";
// The tensor-core kind of the GPU kernels' notes: the AMD build runs MFMA where CUDA runs mma.sync.
const char* const kTc = kHip ? "MFMA" : "mma.sync";
// The GEMM tile's kind in notes: the wgmma tile under GPTOSS_CUDA_GEMM=wgmma (check_gemm_wgmma).
// GPTOSS_CUDA_GEMM_WS=1 / =0 (check_gemm_wgmma's two passes over the grouped MXFP4 cases) name the kernel that ran.
const char* gemm_tc() {
  const char* v = std::getenv("GPTOSS_CUDA_GEMM");
  if (kHip || !v || std::strcmp(v, "wgmma")) return kTc;
  const char* ws = std::getenv("GPTOSS_CUDA_GEMM_WS");
  return !ws ? "wgmma" : !std::strcmp(ws, "0") ? "wgmma, GPTOSS_CUDA_GEMM_WS=0" : "wgmma, GPTOSS_CUDA_GEMM_WS=1";
}

std::shared_ptr<Backend> cpu, gpu;
int failures = 0, cases = 0;
bool quick = false;
bool only_attn_mma = false;
bool only_attn = false;
bool only_moe = false;
bool bf16_experts = false;
bool only_gemv = false;
bool only_gemm_wgmma = false;
bool only_moe_stream = false;
bool only_splitk = false;
bool only_sample = false;
bool only_router = false;
std::string router_tag;  // " rank" while check_router_paths runs the one-pass top-k (GPTOSS_CUDA_ROUTER_RANK=1)

Tensor to_gpu(const Tensor& h) { return gpu->upload(h); }
Tensor to_host(const Tensor& d) {
  Tensor h = host_empty(d.dtype, d.shape);
  gpu->copy_to_host(d, h.data, d.nbytes());
  return h;
}
Tensor poisoned(DType dt, const Shape& s) {
  Tensor t = gpu->empty(dt, s);
  std::vector<uint8_t> ff(t.nbytes(), 0xFF);
  gpu->copy_from_host(t, ff.data(), ff.size());
  return t;
}
float as_f32(const Tensor& t, int64_t i) {
  if (t.dtype == DType::BF16) return bf16_to_f32(t.ptr<uint16_t>()[i]);
  if (t.dtype == DType::F16) return f16_to_f32(t.ptr<uint16_t>()[i]);
  return t.ptr<float>()[i];
}

struct Stats {
  double rel = 0;
  int64_t nan = 0, unwritten = 0;
};
// got: a host copy of the CUDA result (f32 or bf16); want: the CPU result.
Stats compare(const Tensor& got, const Tensor& want, int64_t first = 0, int64_t count = -1) {
  Stats s;
  if (count < 0) count = want.numel();
  double num = 0, den = 0;
  for (int64_t i = first; i < first + count; ++i) {
    float g = as_f32(got, i), w = as_f32(want, i);
    if (got.dtype == DType::F32) {
      uint32_t bits;
      std::memcpy(&bits, &got.ptr<float>()[i], 4);
      if (bits == 0xFFFFFFFFu) { ++s.unwritten; continue; }
    } else if (got.ptr<uint16_t>()[i] == 0xFFFF) { ++s.unwritten; continue; }
    if (std::isnan(g)) { ++s.nan; continue; }
    num += (double(g) - w) * (double(g) - w);
    den += double(w) * w;
  }
  s.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return s;
}

void report(const std::string& op, const std::string& shape, const Stats& s, double tol, const std::string& note = "") {
  ++cases;
  bool ok = s.nan == 0 && s.unwritten == 0 && s.rel <= tol;
  if (!ok) ++failures;
  std::printf("%-5s %-18s %-44s rel_l2 %.3e (tol %.0e)  nan %lld  unwritten %lld  %s\n", ok ? "PASS" : "FAIL",
              op.c_str(), shape.c_str(), s.rel, tol, (long long)s.nan, (long long)s.unwritten, note.c_str());
  std::fflush(stdout);
}

// A yes/no case (a policy's choice on this device, a probe that must have run): passes when `ok`, with the note
// that says which way it went.
void report_flag(const std::string& op, const std::string& what, bool ok, const std::string& yes, const std::string& no) {
  Stats st;
  st.rel = ok ? 0 : 1;
  report(op, what, st, 0.0, ok ? yes : no);
}

// Sets environment variables for its lifetime (the knobs read at each call; a null value unsets one), then puts
// back what was there, whatever was set or unset in between.
struct ScopedEnv {
  struct Saved {
    std::string name;
    bool set;
    std::string value;
  };
  std::vector<Saved> saved;
  ScopedEnv() = default;
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> env) {
    for (const auto& [name, value] : env) set(name, value);
  }
  void set(const char* name, const char* value) {
    bool known = false;
    for (const Saved& v : saved) known |= v.name == name;
    if (!known) {
      const char* was = std::getenv(name);
      saved.push_back({name, was != nullptr, was ? was : ""});
    }
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
      if (it->set) setenv(it->name.c_str(), it->value.c_str(), 1);
      else unsetenv(it->name.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
};

// ---------------------------------------------------------------------------------------------
void check_dequant(Rng& r, const Shape& shape) {
  Tensor h = rand_mxfp4(r, shape, 100, 140);
  Tensor d = to_gpu(h);
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor want = host_empty(dt, shape);
    cpu->mxfp4_dequantize(h, want);
    Tensor got = poisoned(dt, shape);
    gpu->mxfp4_dequantize(d, got);
    report("mxfp4_dequant", shape_str(shape) + "->" + dtype_name(dt), compare(to_host(got), want), 0.0);
  }
}

// n token ids of table's vocabulary (the last id among them) looked up on both backends; `name` says
// which table dtype ran (bf16 "embedding", Q8_0 "embedding_q8_0": GGUF's tables).
void check_embedding(Rng& r, const Tensor& table, int n, const char* name) {
  const int vocab = int(table.dim(0)), H = int(table.dim(1));
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = r.below(vocab);
  ids[0] = vocab - 1;
  Tensor tok = i32_tensor(ids, {n});
  Tensor want = host_empty(DType::F32, {n, H});
  cpu->embedding(tok, table, want);
  Tensor got = poisoned(DType::F32, {n, H});
  gpu->embedding(to_gpu(tok), to_gpu(table), got);
  report(name, "V" + std::to_string(vocab) + " " + shape_str({n, H}), compare(to_host(got), want), 0.0);
}

void check_embedding_range() {
  Tensor table = to_gpu(host_empty(DType::BF16, {4, 8}));
  Tensor tok = to_gpu(i32_tensor({1, 7}, {2}));
  Tensor out = gpu->empty(DType::F32, {2, 8});
  bool threw = false;
  try {
    gpu->embedding(tok, table, out);
    gpu->synchronize();
  } catch (const Error& e) {
    threw = e.kind() == Error::Kind::Range;
    std::printf("      (embedding out of range -> %s)\n", e.what());
  }
  ++cases;
  if (!threw) ++failures;
  std::printf("%-5s %-18s %-44s device range error surfaces as RangeError at synchronize\n", threw ? "PASS" : "FAIL",
              "embedding_range", "token 7 of vocab 4");
}

void check_rmsnorm(Rng& r, int n, int H) {
  Tensor x = rand_f32(r, {n, H}, 3.f), w = rand_bf16(r, {H});
  Tensor want = host_empty(DType::F32, {n, H});
  cpu->rmsnorm(x, w, 1e-5f, want);
  Tensor got = poisoned(DType::F32, {n, H});
  gpu->rmsnorm(to_gpu(x), to_gpu(w), 1e-5f, got);
  report("rmsnorm", shape_str({n, H}), compare(to_host(got), want), 1e-5);
}

void check_linear(Rng& r, int n, int K, int N, bool mx, bool bias, double tol, const char* path) {
  Tensor x = rand_f32(r, {n, K});
  Tensor w = mx ? rand_mxfp4(r, {N, K}) : rand_bf16(r, {N, K}, 0.05f);
  Tensor b = rand_bf16(r, {N});
  Tensor want = host_empty(DType::F32, {n, N});
  cpu->linear(x, w, bias ? &b : nullptr, want);
  Tensor got = poisoned(DType::F32, {n, N});
  Tensor bd = to_gpu(b);
  gpu->linear(to_gpu(x), to_gpu(w), bias ? &bd : nullptr, got);
  report(std::string("linear_") + (mx ? "mxfp4" : "bf16"), shape_str({n, K}) + "x" + shape_str({N, K}) + (bias ? "+b" : ""),
         compare(to_host(got), want), tol, path);
}

// Q8_0 weights (ggml blocks on the host, repacked by upload): GEMV (decode) and the dequantize-to-bf16
// GEMM path vs the CPU's q8_0 kernels on the same blocks.
void check_linear_q8(Rng& r, int n, int K, int N, bool bias, double tol, const char* path) {
  Tensor x = rand_f32(r, {n, K});
  Tensor w = rand_q8_0(r, {N, K}, 0.05f);
  Tensor b = rand_bf16(r, {N});
  Tensor want = host_empty(DType::F32, {n, N});
  cpu->linear(x, w, bias ? &b : nullptr, want);
  Tensor got = poisoned(DType::F32, {n, N});
  Tensor bd = to_gpu(b);
  gpu->linear(to_gpu(x), to_gpu(w), bias ? &bd : nullptr, got);
  report("linear_q8_0", shape_str({n, K}) + "x" + shape_str({N, K}) + (bias ? "+b" : ""), compare(to_host(got), want), tol,
         path);
}

void check_rope(Rng& r, int n, int heads, int D) {
  Tensor x = rand_f32(r, {n, heads, D});
  std::vector<int32_t> pos(n);
  for (auto& p : pos) p = r.below(131072);
  Tensor positions = i32_tensor(pos, {n});
  Tensor inv = host_empty(DType::F32, {D / 2});
  for (int j = 0; j < D / 2; ++j) inv.ptr<float>()[j] = std::pow(150000.f, -2.f * j / D);
  Tensor want = host_empty(DType::F32, {n, heads, D});
  std::memcpy(want.data, x.data, x.nbytes());
  cpu->rope(want, positions, inv, 1.3465736f);
  Tensor got = to_gpu(x);
  gpu->rope(got, to_gpu(positions), to_gpu(inv), 1.3465736f);
  report("rope", shape_str({n, heads, D}) + " pos<131072", compare(to_host(got), want), 1e-5);
}

void check_add(Rng& r, int n, int H) {
  Tensor a = rand_f32(r, {n, H}), b = rand_f32(r, {n, H});
  Tensor got = to_gpu(a);
  cpu->add(a, b);
  gpu->add(got, to_gpu(b));
  report("add", shape_str({n, H}), compare(to_host(got), a), 0.0);
}

// The worst of several comparisons (largest rel, NaNs and unwritten values summed).
Stats worst(std::initializer_list<Stats> all) {
  Stats w;
  for (const Stats& s : all) {
    w.rel = std::max(w.rel, s.rel);
    w.nan += s.nan;
    w.unwritten += s.unwritten;
  }
  return w;
}

// Every value of an f32 tensor replaced by its nearest f16 (so an f16 cache holds it exactly).
void round_to_f16(Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = f16_to_f32(f32_to_f16(t.ptr<float>()[i]));
}

// K and V as the cache type holds them exactly where its element type is f16 (f16, f32k-f16v's V).
void round_for_cache(KvCacheType kv, Tensor& k, Tensor& v) {
  if (kv.key == DType::F16) round_to_f16(k);
  if (kv.value == DType::F16) round_to_f16(v);
}

// A cache store's tolerance against the CPU's f32 rows, by the coarser of K's and V's element types
// (f32 inputs: bf16 rounds to 2^-8 relative, f16 to 2^-11).
double store_tol(KvCacheType kv) {
  auto tol = [](DType d) { return d == DType::BF16 ? 4e-3 : d == DType::F16 ? 5e-4 : 1e-5; };
  return std::max(tol(kv.key), tol(kv.value));
}

// The decode cases' path name while a variant knob is set (check_attention_decode_mma), else null.
const char* attn_decode_label = nullptr;

// KV cache filled for rows [0, ctx) with random K/V through each backend's kv_store (cpu f32, cuda
// gpu_kv), then queries at the given positions. For an f16 cache the random K/V are f16 values to
// begin with (the CPU reference then holds exactly what the GPU cache holds), so the tolerance
// measures the kernels, not the cache's rounding; bf16 keeps f32 inputs (its rounding is in tol).
void check_attention(Rng& r, int n, int Hq, int Hkv, int D, int ctx, int window, const std::vector<int32_t>& pos,
                     KvCacheType gpu_kv, double tol) {
  Tensor k = rand_f32(r, {ctx, Hkv, D}), v = rand_f32(r, {ctx, Hkv, D});
  round_for_cache(gpu_kv, k, v);
  std::vector<int32_t> all(ctx);
  for (int i = 0; i < ctx; ++i) all[i] = i;
  Tensor allpos = i32_tensor(all, {ctx});
  Tensor kc = cpu->empty(DType::F32, {ctx, Hkv, D}), vc = cpu->empty(DType::F32, {ctx, Hkv, D});
  cpu->kv_store(k, v, allpos, kc, vc);
  Tensor gkc = poisoned(gpu_kv.key, {ctx, Hkv, D}), gvc = poisoned(gpu_kv.value, {ctx, Hkv, D});
  gpu->kv_store(to_gpu(k), to_gpu(v), to_gpu(allpos), gkc, gvc);
  if (n == ctx) {  // f16: the inputs are f16 values, stored exactly; f32 exactly
    report("kv_store", shape_str({ctx, Hkv, D}) + " " + kv_cache_name(gpu_kv),
           worst({compare(to_host(gkc), kc), compare(to_host(gvc), vc)}), gpu_kv.key == DType::BF16 ? 4e-3 : 0.0);
  }
  Tensor q = rand_f32(r, {n, Hq, D}), sinks = rand_bf16(r, {Hq});
  Tensor positions = i32_tensor(pos, {n});
  const float scale = 1.f / std::sqrt(float(D));
  Tensor want = host_empty(DType::F32, {n, Hq, D});
  cpu->attention(q, kc, vc, sinks, positions, window, scale, want);
  Tensor got = poisoned(DType::F32, {n, Hq, D});
  gpu->attention(to_gpu(q), gkc, gvc, to_gpu(sinks), to_gpu(positions), window, scale, got);
  const std::string path = n <= 4 ? (attn_decode_label ? attn_decode_label : "decode split-KV") : (D == 64 ? std::string("flash ") + kTc : "naive f32");
  report("attention", "n" + std::to_string(n) + " Hq" + std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" +
                          std::to_string(D) + " ctx" + std::to_string(ctx) + " win" + std::to_string(window) + " kv " +
                          kv_cache_name(gpu_kv),
         compare(to_host(got), want), tol, path);
}

// Paged attention (a batch step over a pool of blocks): sequences of `lengths` tokens whose last
// `fresh[i]` are this step's queries (1: a decode token, more: a prompt chunk), their blocks drawn
// from a shuffled pool, table rows padded with -1 past the blocks they use. K/V are written to the
// pool rows through kv_store (cpu f32, cuda `gpu_kv`), then CUDA's paged_attention (decode kernel,
// plan + decode + flash, flash alone, or the plain kernel) against the CPU's.
void check_paged_attention(Rng& r, const std::vector<int>& lengths, const std::vector<int>& fresh, int Hq, int Hkv,
                           int D, int window, int block_size, KvCacheType gpu_kv, double tol, const std::string& what) {
  const int S = int(lengths.size());
  std::vector<int> need(S);
  int blocks = 1, width = 1;
  for (int i = 0; i < S; ++i) {
    need[i] = (lengths[i] + block_size - 1) / block_size;
    blocks += need[i];
    width = std::max(width, need[i]);
  }
  std::vector<int32_t> ids(blocks);
  for (int b = 0; b < blocks; ++b) ids[b] = b;
  for (int b = blocks - 1; b > 0; --b) std::swap(ids[b], ids[r.below(b + 1)]);
  std::vector<int32_t> table(size_t(S) * width, -1), rows, positions, seq_of;
  int next = 0, n = 0;
  for (int i = 0; i < S; ++i) {
    for (int b = 0; b < need[i]; ++b) table[size_t(i) * width + b] = ids[next++];
    for (int p = lengths[i] - fresh[i]; p < lengths[i]; ++p, ++n) {
      positions.push_back(p);
      seq_of.push_back(i);
    }
  }
  for (int i = 0; i < S; ++i)
    for (int p = 0; p < lengths[i]; ++p)
      rows.push_back(table[size_t(i) * width + p / block_size] * block_size + p % block_size);
  const int pool_rows = blocks * block_size, written = int(rows.size());
  Tensor k = rand_f32(r, {written, Hkv, D}), v = rand_f32(r, {written, Hkv, D});
  round_for_cache(gpu_kv, k, v);  // f16 values to begin with: the tolerance measures the kernels
  Tensor rows_t = i32_tensor(rows, {written});
  Tensor kc = cpu->empty(DType::F32, {pool_rows, Hkv, D}), vc = cpu->empty(DType::F32, {pool_rows, Hkv, D});
  std::memset(kc.data, 0, kc.nbytes());
  std::memset(vc.data, 0, vc.nbytes());
  cpu->kv_store(k, v, rows_t, kc, vc);
  Tensor gkc = poisoned(gpu_kv.key, {pool_rows, Hkv, D}), gvc = poisoned(gpu_kv.value, {pool_rows, Hkv, D});
  gpu->kv_store(to_gpu(k), to_gpu(v), to_gpu(rows_t), gkc, gvc);
  Tensor q = rand_f32(r, {n, Hq, D}), sinks = rand_bf16(r, {Hq});
  Tensor pos_t = i32_tensor(positions, {n}), seq_t = i32_tensor(seq_of, {n}), table_t = i32_tensor(table, {S, width});
  const float scale = 1.f / std::sqrt(float(D));
  Tensor want = host_empty(DType::F32, {n, Hq, D});
  cpu->paged_attention(q, kc, vc, sinks, pos_t, seq_t, table_t, block_size, window, scale, want);
  Tensor got = poisoned(DType::F32, {n, Hq, D});
  gpu->paged_attention(to_gpu(q), gkc, gvc, to_gpu(sinks), to_gpu(pos_t), to_gpu(seq_t), to_gpu(table_t), block_size,
                       window, scale, got);
  report("paged attention", std::to_string(S) + " seqs n" + std::to_string(n) + " Hq" + std::to_string(Hq) + "/" +
                                std::to_string(Hkv) + " D" + std::to_string(D) + " bs" + std::to_string(block_size) +
                                " win" + std::to_string(window) + " kv " + kv_cache_name(gpu_kv),
         compare(to_host(got), want), tol, what);
}

// The tensor-core decode kernel (GPTOSS_CUDA_ATTN_DECODE=mma; issue 12 item 3; compiled, not yet run
// on a GPU when these cases were written): fresh random data against the CPU backend at key counts
// that make whole, partial and empty splits (32 splits at most by default, 64 with GPTOSS_CUDA_ATTN_MMA_SPLITS=64:
// the merge's second lane of splits; whole 64-key tiles a split), windows
// whose first key is not tile-aligned, a single key, several tokens of one step (the rows from the
// step's first position load after the PDL wait), G = 4 (heads padded in the MMA), the paged path, and
// the f32 cache (no 16-bit V: the SIMT kernel runs, so it must pass as before). Every output is
// written (the outputs start poisoned, NaN fails). Predicted (bench/RESULTS.md issue 12 item 3):
// f32k-f16v and f16 <= 5e-6 (scores to ~2^-16 of sum |q_i k_i|, P hi + lo in f16 to ~2^-22), bf16
// as the SIMT kernel's (its inputs are f32 values rounded by the cache: the rounding is in tol).
void check_attention_decode_mma(Rng& r) {
  const ScopedEnv scoped({{"GPTOSS_CUDA_ATTN_DECODE", "mma"}});
  attn_decode_label = "decode mma";
  const int big = quick ? 600 : 8192;
  for (KvCacheType kv : {kKvF32KF16V, kKvF16}) {
    const double tol = 2e-5;
    check_attention(r, 1, 64, 8, 64, big, 0, {big - 1}, kv, tol);                 // 32 splits of whole tiles
    {
      const ScopedEnv splits({{"GPTOSS_CUDA_ATTN_MMA_SPLITS", "64"}});
      check_attention(r, 1, 64, 8, 64, big, 0, {big - 1}, kv, tol);               // 64 splits
    }
    check_attention(r, 1, 64, 8, 64, big, 0, {big - 200}, kv, tol);               // a partial last tile
    check_attention(r, 1, 64, 8, 64, 1000, 0, {517}, kv, tol);                    // empty splits
    check_attention(r, 1, 64, 8, 64, 1000, 0, {0}, kv, tol);                      // one key
    check_attention(r, 1, 64, 8, 64, 1000, 0, {63}, kv, tol);                     // one whole tile
    check_attention(r, 1, 64, 8, 64, big, 128, {big / 2 + 37}, kv, tol);          // window, unaligned start
    check_attention(r, 1, 64, 8, 64, big, 128, {127}, kv, tol);                   // window edge: all 128 keys
    check_attention(r, 1, 64, 8, 64, big, 128, {128}, kv, tol);                   // window edge: key 0 drops out
    check_attention(r, 1, 64, 8, 64, 300, 128, {40}, kv, tol);                    // window longer than the past
    check_attention(r, 2, 64, 8, 64, 2048, 300, {1500, 1501}, kv, tol);           // window over splits, 2 tokens
    check_attention(r, 4, 64, 8, 64, 3000, 0, {2990, 2991, 2992, 2993}, kv, tol); // 4 tokens: fresh rows
    check_attention(r, 1, 8, 2, 64, 48, 16, {47}, kv, tol);                       // tiny-a: G = 4
    check_attention(r, 3, 8, 2, 64, 48, 0, {20, 30, 47}, kv, tol);
  }
  if (!quick) check_attention(r, 1, 64, 8, 64, 32768, 0, {32767}, kKvF32KF16V, 2e-5);  // 8 tiles a split
  check_attention(r, 1, 64, 8, 64, big, 0, {big - 1}, kKvBF16, 1e-2);
  check_attention(r, 1, 64, 8, 64, 1000, 0, {517}, kKvBF16, 1e-2);
  check_attention(r, 1, 64, 8, 64, big, 128, {big / 2 + 37}, kKvBF16, 1e-2);
  check_attention(r, 3, 8, 2, 64, 48, 0, {20, 30, 47}, kKvBF16, 1e-2);
  attn_decode_label = "decode split-KV (f32 cache: mma not taken)";
  check_attention(r, 1, 64, 8, 64, 1000, 0, {517}, kKvF32, 1e-5);
  attn_decode_label = "decode mma";
  // paged (a batch step's decode tokens; blocks shuffled through the pool)
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 0, 16, kKvF32KF16V, 2e-5, "decode mma");
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 128, 16, kKvF32KF16V, 2e-5, "decode mma window");
  check_paged_attention(r, {201, 100, 5, 1, 77}, {1, 70, 5, 1, 1}, 8, 2, 64, 16, 16, kKvF32KF16V, 1e-4, "decode mma: plan");
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 0, 16, kKvBF16, 1e-2, "decode mma");
  attn_decode_label = nullptr;
}

// rope_kv_store_slots: RoPE at the positions, the cache write at the slots (pool rows).
void check_rope_kv_store_slots(Rng& r, int n, int Hq, int Hkv, int D, int pool_rows, KvCacheType gpu_kv) {
  Tensor q = rand_f32(r, {n, Hq, D}), k = rand_f32(r, {n, Hkv, D}), v = rand_f32(r, {n, Hkv, D});
  std::vector<int32_t> pos(n), slots(n);
  for (int i = 0; i < n; ++i) {
    pos[i] = r.below(4000);
    slots[i] = (i * 7919) % pool_rows;  // distinct for n <= pool_rows (7919 is prime)
  }
  std::vector<float> invf(D / 2);
  for (int j = 0; j < D / 2; ++j) invf[j] = std::pow(150000.f, -2.f * j / D);
  Tensor inv = host_empty(DType::F32, {D / 2});
  std::memcpy(inv.data, invf.data(), invf.size() * 4);
  Tensor pos_t = i32_tensor(pos, {n}), slots_t = i32_tensor(slots, {n});
  Tensor kc = cpu->empty(DType::F32, {pool_rows, Hkv, D}), vc = cpu->empty(DType::F32, {pool_rows, Hkv, D});
  std::memset(kc.data, 0, kc.nbytes());
  std::memset(vc.data, 0, vc.nbytes());
  Tensor gq = to_gpu(q), gk = to_gpu(k), gv = to_gpu(v);
  Tensor gkc = gpu->empty(gpu_kv.key, {pool_rows, Hkv, D}), gvc = gpu->empty(gpu_kv.value, {pool_rows, Hkv, D});
  std::vector<uint8_t> zero(std::max(gkc.nbytes(), gvc.nbytes()), 0);
  gpu->copy_from_host(gkc, zero.data(), gkc.nbytes());
  gpu->copy_from_host(gvc, zero.data(), gvc.nbytes());
  cpu->rope_kv_store_slots(q, k, v, pos_t, slots_t, inv, 1.3f, kc, vc);
  gpu->rope_kv_store_slots(gq, gk, gv, to_gpu(pos_t), to_gpu(slots_t), to_gpu(inv), 1.3f, gkc, gvc);
  const double tol = store_tol(gpu_kv);
  const std::string shape = "n" + std::to_string(n) + " pool" + std::to_string(pool_rows) + " " + kv_cache_name(gpu_kv);
  report("rope_kv_store_slots", shape + " q", compare(to_host(gq), q), 1e-5);
  report("rope_kv_store_slots", shape + " kCache", compare(to_host(gkc), kc), tol);
  report("rope_kv_store_slots", shape + " vCache", compare(to_host(gvc), vc), tol);
}

// A batch step's draws for the sampling checks: row i draws into row rows - 1 - i with the i % 8-th of eight
// settings (greedy, plain, top-k, top-p, all four, min-p, top-k 1, cold top-p) and a fresh uniform.
struct RowDraws {
  std::vector<int32_t> rows;
  std::vector<SampleParams> params;
  std::vector<float> uniforms;
};
RowDraws row_draws(Rng& r, int rows) {
  struct P { float t; int k; float p; float mp; };
  const P ps[] = {{0, 0, 1, 0}, {1, 0, 1, 0}, {0.7f, 40, 1, 0}, {1, 0, 0.9f, 0}, {0.8f, 50, 0.95f, 0.05f},
                  {1.2f, 0, 1, 0.1f}, {1, 1, 1, 0}, {0.5f, 0, 0.5f, 0}};
  RowDraws d;
  for (int i = 0; i < rows; ++i) {
    const P& p = ps[i % 8];
    SampleParams sp;
    sp.temperature = p.t; sp.top_k = p.k; sp.top_p = p.p; sp.min_p = p.mp;
    d.rows.push_back(rows - 1 - i);
    d.params.push_back(sp);
    d.uniforms.push_back(r.uniform());
  }
  return d;
}

// gather_rows and sample_rows (a batch step's logits and draws) against the CPU's, row by row.
void check_batch_draws(Rng& r, int rows, int V) {
  Tensor x = rand_f32(r, {rows + 3, V}, 2.f);
  std::vector<int32_t> pick(rows);
  for (int i = 0; i < rows; ++i) pick[i] = (i * 5 + 2) % (rows + 3);
  Tensor pick_t = i32_tensor(pick, {rows});
  Tensor want = host_empty(DType::F32, {rows, V});
  cpu->gather_rows(x, pick_t, want);
  Tensor got = poisoned(DType::F32, {rows, V});
  gpu->gather_rows(to_gpu(x), to_gpu(pick_t), got);
  report("gather_rows", std::to_string(rows) + " of " + std::to_string(rows + 3) + " x V" + std::to_string(V),
         compare(to_host(got), want), 0.0);
  const RowDraws d = row_draws(r, rows);
  Tensor logits = to_gpu(want);
  const std::vector<int32_t> a = cpu->sample_rows(want, d.rows, d.params, d.uniforms);
  const std::vector<int32_t> b = gpu->sample_rows(logits, d.rows, d.params, d.uniforms);
  int same = 0;
  for (int i = 0; i < rows; ++i) same += a[i] == b[i];
  Stats s;
  s.rel = double(rows - same) / rows;
  report("sample_rows", std::to_string(rows) + " rows V" + std::to_string(V) + " 8 settings", s, 1.0 / 40,
         std::to_string(same) + "/" + std::to_string(rows) + " identical tokens");
}

// Backend::queue_sample_rows (the pipelined batch decode's draws): the same ids as sample_rows on the
// same device, each also written to its token row (0 for a row with no distribution), the other rows
// untouched, two tickets in flight read back in order.
void check_queued_draws(Rng& r, int rows, int V) {
  Tensor x = rand_f32(r, {rows, V}, 2.f);
  x.ptr<float>()[int64_t(rows / 2) * V + 7] = NAN;  // no distribution: a code, token 0
  Tensor logits = to_gpu(x);
  const RowDraws d = row_draws(r, rows);
  const int slots = rows + 5;
  const std::vector<int32_t> poison(size_t(slots), -7);
  Tensor tok1 = to_gpu(i32_tensor(poison, {slots})), tok2 = to_gpu(i32_tensor(poison, {slots}));
  const std::vector<int32_t> want = gpu->sample_rows(logits, d.rows, d.params, d.uniforms);
  Backend::RowsTicket t1 = gpu->queue_sample_rows(logits, d.rows, d.params, d.uniforms, tok1);
  Backend::RowsTicket t2 = gpu->queue_sample_rows(logits, d.rows, d.params, d.uniforms, tok2);
  const std::vector<int32_t> a = gpu->read_rows(t1), b = gpu->read_rows(t2);
  const Tensor h1 = to_host(tok1), h2 = to_host(tok2);
  int bad = 0, codes = 0;
  std::vector<char> drawn(size_t(slots), 0);
  for (int j = 0; j < rows; ++j) {
    const int32_t row = d.rows[size_t(j)], id = want[size_t(j)], token = id < 0 ? 0 : id;
    codes += id < 0;
    drawn[size_t(row)] = 1;
    bad += a.size() != size_t(rows) || b.size() != size_t(rows) || a[size_t(j)] != id || b[size_t(j)] != id;
    bad += h1.ptr<int32_t>()[row] != token || h2.ptr<int32_t>()[row] != token;
  }
  for (int i = 0; i < slots; ++i)
    if (!drawn[size_t(i)]) bad += h1.ptr<int32_t>()[i] != -7 || h2.ptr<int32_t>()[i] != -7;
  Stats s;
  s.rel = bad;
  report("queue_sample_rows", std::to_string(rows) + " rows V" + std::to_string(V) + " 8 settings", s, 0.0,
         std::to_string(bad) + " mismatches vs sample_rows and token rows; " + std::to_string(codes) + " code(s)");
}

std::vector<int32_t> iota_pos(int n, int start) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = start + i;
  return p;
}

// The router op on CUDA against the CPU's on the same x [n, H], weight [E, H] and bias. exact_idx: every index must
// match; otherwise 1 in 200 may differ (exact f32 dots in another order: an index may differ only at a true near-tie).
void compare_router(const char* name, const Tensor& x, const Tensor& w, const Tensor& b, int k, bool exact_idx, double tol) {
  const int64_t n = x.dim(0), H = x.dim(1), E = w.dim(0);
  Tensor wi = host_empty(DType::I32, {n, k}), ww = host_empty(DType::F32, {n, k});
  cpu->router(x, w, b, k, wi, ww);
  Tensor gi = poisoned(DType::I32, {n, k}), gw = poisoned(DType::F32, {n, k});
  gpu->router(to_gpu(x), to_gpu(w), to_gpu(b), k, gi, gw);
  Tensor hi = to_host(gi);
  int64_t mismatch = 0;
  for (int64_t i = 0; i < n * k; ++i) mismatch += hi.ptr<int32_t>()[i] != wi.ptr<int32_t>()[i];
  Stats s = compare(to_host(gw), ww);
  if (exact_idx ? mismatch != 0 : mismatch * 200 > n * k) s.rel = 1;
  report(name, shape_str({n, H}) + " E" + std::to_string(E) + " k" + std::to_string(k) + router_tag, s, tol,
         "idx mismatches " + std::to_string(mismatch) + "/" + std::to_string(n * k));
}

void check_router(Rng& r, int n, int H, int E, int k) {
  Tensor x = rand_f32(r, {n, H}), w = rand_bf16(r, {E, H}, 0.05f), b = rand_bf16(r, {E}, 0.1f);
  compare_router("router", x, w, b, k, false, 1e-5);
}

// Exact ties: zero router rows, so every logit is its bf16 bias (+-0 included), drawn from five values. The selection
// must be torch.topk's (larger first, equal logits by the lower index, -0 equal to +0) index for index, and the weights
// the CPU's. check_router_paths runs it with the rounds and with the one pass (E <= a warp; E 128 always the rounds).
void check_router_ties(Rng& r, int n, int H, int E, int k) {
  Tensor x = rand_f32(r, {n, H}), w = host_empty(DType::BF16, {E, H}), b = host_empty(DType::BF16, {E});
  std::memset(w.data, 0, w.nbytes());
  const float vals[5] = {1.f, 0.5f, 0.f, -0.f, -1.f};
  for (int e = 0; e < E; ++e) b.ptr<uint16_t>()[e] = f32_to_bf16(vals[r.below(5)]);
  compare_router("router ties", x, w, b, k, true, 1e-6);
}

struct MoeSet {
  MoeWeights cw, gw;
  int E, H, I;
};
// Scale bytes: gate_up [gu_lo, gu_hi], down [d_lo, d_hi] (E8M0 2^(s-127)).
MoeSet make_moe(Rng& r, int E, int H, int I, int gu_lo = 119, int gu_hi = 122, int d_lo = 117, int d_hi = 120) {
  MoeSet m;
  m.E = E; m.H = H; m.I = I;
  m.cw.gate_up = rand_mxfp4(r, {E, 2 * I, H}, gu_lo, gu_hi);
  m.cw.gate_up_bias = rand_bf16(r, {E, 2 * I}, 0.5f);
  m.cw.down = rand_mxfp4(r, {E, H, I}, d_lo, d_hi);
  m.cw.down_bias = rand_bf16(r, {E, H}, 0.5f);
  m.gw.gate_up = to_gpu(m.cw.gate_up);
  m.gw.gate_up_bias = to_gpu(m.cw.gate_up_bias);
  m.gw.down = to_gpu(m.cw.down);
  m.gw.down_bias = to_gpu(m.cw.down_bias);
  return m;
}

// The decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid; issue 12 item 1): m's experts uploaded again
// and re-laid in place on the device by prepare_experts; the device's bytes against the host
// re-layout (mxfp4_layout.h), bit for bit. check_moe(..., relaid = true) then runs the relaid decode
// kernel and the grouped GEMM on them.
Tensor device_bytes(const Tensor& d, bool scales) {
  Tensor v;
  v.dtype = DType::U8;
  v.shape = Shape({int64_t(scales ? d.scale_bytes() : d.nbytes())});
  v.device = d.device;
  v.data = scales ? d.scales : d.data;
  v.storage = d.storage;
  return to_host(v);
}
MoeSet relaid_copy(const MoeSet& m) {
  MoeSet c = m;
  c.gw.gate_up = to_gpu(m.cw.gate_up);
  c.gw.down = to_gpu(m.cw.down);
  std::string line;
  {
    const ScopedEnv scoped({{"GPTOSS_CUDA_MOE_DECODE", "mma-relaid"}});
    line = gpu->prepare_experts(c.gw);
  }
  int64_t differ = c.gw.decode_layout ? 0 : 1;
  for (int which = 0; which < 2; ++which) {
    const Tensor& host = which ? m.cw.down : m.cw.gate_up;
    const Tensor& dev = which ? c.gw.down : c.gw.gate_up;
    std::vector<uint8_t> blocks(host.nbytes()), scales(host.scale_bytes());
    cuda::mxlayout::to_decode_layout(host.ptr<uint8_t>(), static_cast<const uint8_t*>(host.scales), host.dim(0), host.dim(1),
                               host.dim(2) / 32, blocks.data(), scales.data());
    const Tensor db = device_bytes(dev, false), ds = device_bytes(dev, true);
    for (size_t i = 0; i < blocks.size(); ++i) differ += db.ptr<uint8_t>()[i] != blocks[i];
    for (size_t i = 0; i < scales.size(); ++i) differ += ds.ptr<uint8_t>()[i] != scales[i];
  }
  Stats st;
  st.rel = double(differ);
  report("moe decode layout", "E" + std::to_string(m.E) + " H" + std::to_string(m.H) + " I" + std::to_string(m.I), st, 0.0,
         "device re-layout == host re-layout, bytes differing " + std::to_string(differ) + "; " + line);
  return c;
}

// What a router hands the MoE for n tokens: k distinct experts of E per token (ids [n, k]) and their
// weights [n, k], 0.1 + uniform each, normalised to sum 1 (as a softmax over the top k leaves them).
struct Routes {
  Tensor experts, weights;
};
Routes draw_routes(Rng& r, int n, int k, int E) {
  std::vector<int32_t> idx(size_t(n) * k);
  Tensor w = host_empty(DType::F32, {n, k});
  float* wt = w.ptr<float>();
  for (int t = 0; t < n; ++t) {
    int32_t* row = idx.data() + size_t(t) * k;
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      int e;
      do e = r.below(E);
      while (std::find(row, row + j, e) != row + j);
      row[j] = e;
      wt[t * k + j] = 0.1f + r.uniform();
      sum += wt[t * k + j];
    }
    for (int j = 0; j < k; ++j) wt[t * k + j] /= sum;
  }
  return {i32_tensor(idx, {n, k}), std::move(w)};
}

void check_moe(Rng& r, const MoeSet& m, int n, int k, double tol, bool relaid = false);

// Whether GPTOSS_CUDA_MOE_BATCH=stream (or GPTOSS_CUDA_MOE_DECODE=stream for a decode-sized call) runs
// moe_stream.cu's kernels for this call on this device (else the chooser falls back to the GEMM tile or the
// decode kernels, and a "stream" row proves nothing about them): the note says which.
std::string moe_stream_note(int n, int k, int E, int H, int I) {
#if !defined(GPTOSS_GPU_CHECK_HIP)
  namespace gc = gptoss::cuda;
  gc::GpuKnobs kn = gc::knobs();
  kn.moe_batch = gc::GpuKnobs::MoeBatch::Stream;
  kn.moe_decode = gc::GpuKnobs::MoeDecode::Stream;
  const gc::GpuCaps& caps = gc::device_caps(0);
  const bool runs = gc::moe_uses_decode(n, k) ? gc::moe_decode_uses_stream(caps, kn, E, H, I)
                                              : gc::choose_moe_batch(caps, kn, n, k, E, H, I, false) == gc::MoeBatchPath::Stream;
  if (runs) {
    // the launcher's choices (moe_stream.cu launch_moe_stream_gemm): rows a CTA, ring depth, TMA or cp.async
    const int tokens = gc::moe_stream_tokens(caps, kn, int64_t(n) * k, E, H, I);
    int stages = gc::moe_stream_stages(caps, std::max(H, I) / 32);
    const char* deep = std::getenv("GPTOSS_CUDA_MOE_STREAM_STAGES");
    if (tokens == gc::kMoeStreamTokens && deep && !std::strcmp(deep, "5") &&
        gc::moe_stream_deep_stages(caps, std::max(H, I) / 32) == gc::kMoeStreamDeepStages)
      stages = gc::kMoeStreamDeepStages;
    const bool tma = gc::moe_stream_uses_tma(caps, kn, H / 32, tokens, stages) && gc::moe_stream_uses_tma(caps, kn, I / 32, tokens, stages);
    return " (moe_stream.cu, " + std::to_string(stages) + " stages, " + std::to_string(tokens) + " rows a CTA, " +
           (tma ? "TMA" : "cp.async") + ")";
  }
#else
  (void)n, (void)k, (void)E, (void)H, (void)I;
#endif
  return " (NOT run: another path fell in)";
}

// Routes with given rows an expert: counts[e] (<= n each, sum n k): the experts listed counts[e] times in
// expert order fill the (token, j) slots column by column (token t takes list[t + j n]: one expert's run
// is at most n long, so a token's k experts are distinct), then tokens and expert ids are shuffled.
Routes routes_with_counts(Rng& r, const std::vector<int>& counts, int k) {
  const int E = int(counts.size());
  int total = 0, most = 0;
  for (int c : counts) total += c, most = std::max(most, c);
  const int n = total / k;
  if (total % k || most > n) throw std::runtime_error("routes_with_counts: counts must sum to n k with each <= n");
  std::vector<int32_t> list;
  for (int e = 0; e < E; ++e) list.insert(list.end(), size_t(counts[e]), e);
  std::vector<int32_t> relabel(E), order(n);
  for (int e = 0; e < E; ++e) relabel[e] = e;
  for (int e = E - 1; e > 0; --e) std::swap(relabel[e], relabel[r.below(e + 1)]);
  for (int t = 0; t < n; ++t) order[t] = t;
  for (int t = n - 1; t > 0; --t) std::swap(order[t], order[r.below(t + 1)]);
  std::vector<int32_t> idx(size_t(n) * k);
  Tensor w = host_empty(DType::F32, {n, k});
  for (int t = 0; t < n; ++t) {
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      idx[size_t(order[t]) * k + j] = relabel[list[size_t(t) + size_t(j) * n]];
      sum += (w.ptr<float>()[order[t] * k + j] = 0.1f + r.uniform());
    }
    for (int j = 0; j < k; ++j) w.ptr<float>()[order[t] * k + j] /= sum;
  }
  return {i32_tensor(idx, {n, k}), std::move(w)};
}

// One MoE call on `routes` (x drawn here, after the routes) with the knobs `env` set for it and restored after,
// into a poisoned output, against the CPU backend.
Stats moe_against_cpu(Rng& r, const MoeSet& m, const Routes& routes,
                      std::initializer_list<std::pair<const char*, const char*>> env) {
  const int n = int(routes.experts.dim(0));
  Tensor x = rand_f32(r, {n, m.H});
  SwigluParams sw;
  Tensor want = host_empty(DType::F32, {n, m.H});
  cpu->moe(x, routes.experts, routes.weights, m.cw, sw, want);
  Tensor gx = to_gpu(x), gei = to_gpu(routes.experts), gwt = to_gpu(routes.weights);
  Tensor got = poisoned(DType::F32, {n, m.H});
  {
    const ScopedEnv scoped(env);
    gpu->moe(gx, gei, gwt, m.gw, sw, got);
  }
  return compare(to_host(got), want);
}
// A MoE case's shape in reports ("n2048 E32 k4 H2880 I2880"), for either set (MoeSet, MoeBf16Set).
template <class Set>
std::string moe_shape(int n, int k, const Set& m) {
  return "n" + std::to_string(n) + " E" + std::to_string(m.E) + " k" + std::to_string(k) + " H" + std::to_string(m.H) +
         " I" + std::to_string(m.I);
}
// The streaming MoE of a decode batch (issue 11; GPTOSS_CUDA_MOE_BATCH=stream, moe_stream.cu) on routes of
// chosen rows an expert, against the CPU: 1e-4 (A as bf16 hi + lo, exact products, f32 sums; the GEMM
// tile's gate), every output poisoned first.
void check_moe_counts(Rng& r, const MoeSet& m, const std::vector<int>& counts, int k, const std::string& what) {
  const Routes routes = routes_with_counts(r, counts, k);
  const int n = int(routes.experts.dim(0));
  const Stats st = moe_against_cpu(r, m, routes, {{"GPTOSS_CUDA_MOE_BATCH", "stream"}});
  report("moe", moe_shape(n, k, m), st, 1e-4, "batch: stream, " + what + moe_stream_note(n, k, m.E, m.H, m.I));
}
// counts[e] = pattern[e % pattern.size()]
std::vector<int> cycle_counts(int E, const std::vector<int>& pattern) {
  std::vector<int> c(E);
  for (int e = 0; e < E; ++e) c[e] = pattern[size_t(e) % pattern.size()];
  return c;
}
// Uniform random routes (top-4 of the set's experts) through the streaming kernels at a decode batch's and a
// prefill chunk's sizes (GPTOSS_CUDA_MOE_BATCH=stream; the policy's width for each), against the CPU: 1e-4.
void check_moe_stream_random(Rng& r, const MoeSet& m, bool relaid) {
  for (int n : {150, 300, 520, 1000}) {
    if (int64_t(n) * 4 > int64_t(gptoss::cuda::kMoeStreamMaxPerExpert) * m.E) continue;
    const Routes routes = draw_routes(r, n, 4, m.E);
    const Stats st = moe_against_cpu(r, m, routes, {{"GPTOSS_CUDA_MOE_BATCH", "stream"}});
    report("moe", moe_shape(n, 4, m), st, 1e-4,
           std::string("batch: stream, random routes") + (relaid ? ", decode layout" : "") + moe_stream_note(n, 4, m.E, m.H, m.I));
  }
}
// GPTOSS_CUDA_MOE_ACT=bf16 (probe; policy.h GpuKnobs::moe_act_bf16) on the grouped MoE's wgmma tile: A as its bf16 hi
// half alone in both GEMMs. Against the CPU's f32 activations: within 5e-3 (bf16 rounding of x and of the SwiGLU
// output, ~1e-3 each), and past 2e-4 (the hi + lo split gives ~5e-6: a result that close means the probe did not run).
void check_moe_act_bf16(Rng& r, const MoeSet& m, int n, int k, bool relaid) {
  const Routes routes = draw_routes(r, n, k, m.E);
  const Stats st = moe_against_cpu(r, m, routes, {{"GPTOSS_CUDA_MOE_BATCH", "gemm"}, {"GPTOSS_CUDA_MOE_ACT", "bf16"}});
  const std::string shape = moe_shape(n, k, m);
  report("moe", shape, st, 5e-3, std::string("grouped ") + gemm_tc() + ", GPTOSS_CUDA_MOE_ACT=bf16" + (relaid ? ", decode layout" : ""));
  report_flag("moe act bf16", shape, st.rel > 2e-4, "the bf16-only activations ran (rel L2 past the split's ~5e-6)",
              "rel L2 within the split's: the bf16-only activations did NOT run");
}
void check_moe_stream(Rng& r) {
#if !defined(GPTOSS_GPU_CHECK_HIP)
  namespace gc = gptoss::cuda;
  gc::GpuKnobs kn = gc::knobs();
  kn.moe_batch = gc::GpuKnobs::MoeBatch::Stream;
  const bool picked = gc::choose_moe_batch(gc::device_caps(0), kn, 64, 4, 32, 2880, 2880, false) == gc::MoeBatchPath::Stream;
#else
  const bool picked = false;
#endif
  report_flag("moe stream", "policy", picked, "GPTOSS_CUDA_MOE_BATCH=stream picks moe_stream.cu (20b widths)",
              "moe_stream.cu is NOT picked on this device/image");
  if (!picked) return;
  // odd widths: one MX block pair (K = 64), a partial 128-row tile, an odd block count (17, 10) and partial stages
  MoeSet small = make_moe(r, 5, 64, 96);
  check_moe_counts(r, small, {12, 3, 8, 1, 12}, 3, "rows 12/3/8/1/12");
  check_moe_counts(r, small, {17, 17, 0, 17, 17}, 4, "rows 17 (two passes)");
  MoeSet odd = make_moe(r, 6, 544, 320);
  check_moe_counts(r, odd, {1, 32, 3, 0, 8, 20}, 2, "rows 1/32/3/0/8/20");
  check_moe_counts(r, odd, {33, 5, 40, 2, 0, 0}, 2, "rows 33/5/40/2 (three passes)");
  // 20b widths, 32 experts, top-4: 8 streams (1 an expert), 64 (8), 128 (16), 17 and 32 an expert, a mix with empties
  MoeSet real = make_moe(r, 32, 2880, 2880);
  check_moe_counts(r, real, cycle_counts(32, {1}), 4, "rows 1 an expert (8 streams)");
  check_moe_counts(r, real, cycle_counts(32, {8}), 4, "rows 8 an expert (64 streams)");
  check_moe_counts(r, real, cycle_counts(32, {16}), 4, "rows 16 an expert (128 streams)");
  check_moe_counts(r, real, cycle_counts(32, {17}), 4, "rows 17 an expert");
  check_moe_counts(r, real, cycle_counts(32, {32}), 4, "rows 32 an expert");
  check_moe_counts(r, real, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5");
  // prefill chunks (the band up to kMoeStreamMaxPerExpert since the twentieth session): 512 and 1,024 tokens
  check_moe_counts(r, real, cycle_counts(32, {64}), 4, "rows 64 an expert (a 512-token chunk)");
  check_moe_counts(r, real, cycle_counts(32, {128}), 4, "rows 128 an expert (a 1,024-token chunk)");
  check_moe_counts(r, real, cycle_counts(32, {200, 3, 0, 41, 97, 16, 15, 33}), 4, "rows 200/3/0/41/97/16/15/33 (skewed)");
  check_moe_stream_random(r, real, false);
  // the deep ring (5 stages, two CTAs an SM on sm_90) where the policy picks the shallow one
  {
    const ScopedEnv scoped({{"GPTOSS_CUDA_MOE_STREAM_STAGES", "5"}});
    check_moe_counts(r, small, {17, 17, 0, 17, 17}, 4, "rows 17 (two passes), 5 stages");
    check_moe_counts(r, odd, {33, 5, 40, 2, 0, 0}, 2, "rows 33/5/40/2 (three passes), 5 stages");
    check_moe_counts(r, real, cycle_counts(32, {8}), 4, "rows 8 an expert (64 streams), 5 stages");
    check_moe_counts(r, real, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5, 5 stages");
  }
  // the decode layout (mma-relaid): bit-placed operands x 2^(s-1); scales above 128 take the two-multiply path
  {
    const MoeSet small_r = relaid_copy(small), real_r = relaid_copy(real);
    check_moe_counts(r, small_r, {17, 17, 0, 17, 17}, 4, "rows 17 (two passes), decode layout");
    check_moe_counts(r, real_r, cycle_counts(32, {8}), 4, "rows 8 an expert (64 streams), decode layout");
    check_moe_counts(r, real_r, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5, decode layout");
    {
      const ScopedEnv scoped({{"GPTOSS_CUDA_MOE_STREAM_TOKENS", "16"}});  // the narrow kernel over a prefill chunk's rows
      check_moe_counts(r, real_r, cycle_counts(32, {48, 64, 0, 96}), 4, "rows 48/64/0/96, narrow, decode layout");
    }
    check_moe(r, real_r, 64, 4, 1e-4, true);  // random routes: the tile and the stream on the decode layout
    check_moe_stream_random(r, real_r, true);
    check_moe_counts(r, real_r, cycle_counts(32, {200, 3, 0, 41, 97, 16, 15, 33}), 4, "rows 200/3/0/41/97/16/15/33 (skewed), decode layout");
    const MoeSet hot = make_moe(r, 8, 2880, 2880, 124, 131, 122, 131), hot_r = relaid_copy(hot);
    check_moe_counts(r, hot, cycle_counts(8, {8}), 4, "scales 122-131, checkpoint layout");
    check_moe_counts(r, hot_r, cycle_counts(8, {8}), 4, "scales 122-131 (> 128: two multiplies), decode layout");
    const MoeSet cool = make_moe(r, 8, 2880, 2880, 100, 128, 100, 128), cool_r = relaid_copy(cool);
    check_moe_counts(r, cool_r, cycle_counts(8, {8}), 4, "scales 100-128 (one multiply, 2^-27 .. 2^127), decode layout");
  }
  // the wide kernel (GPTOSS_CUDA_MOE_STREAM_TOKENS=32: 32 rows a CTA, even n-tile counts) where it runs
#if !defined(GPTOSS_GPU_CHECK_HIP)
  if (gc::moe_stream_wide_stages(gc::device_caps(0), 2880 / 32) > 0) {
    ScopedEnv scoped({{"GPTOSS_CUDA_MOE_STREAM_TOKENS", "32"}});
    const MoeSet small_w = relaid_copy(small), real_w = relaid_copy(real);
    check_moe_counts(r, small, {12, 3, 8, 1, 12}, 3, "rows 12/3/8/1/12, wide");
    check_moe_counts(r, odd, {33, 5, 40, 2, 0, 0}, 2, "rows 33/5/40/2 (two wide passes), wide");
    check_moe_counts(r, small_w, {33, 32, 17, 34, 20}, 4, "rows 33/32/17/34/20, wide, decode layout");
    check_moe_counts(r, real_w, cycle_counts(32, {16}), 4, "rows 16 an expert (128 streams), wide, decode layout");
    check_moe_counts(r, real_w, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5, wide, decode layout");
    check_moe_counts(r, real, cycle_counts(32, {24}), 4, "rows 24 an expert (192 streams), wide");
    check_moe_counts(r, real_w, cycle_counts(32, {48, 64, 128, 160}), 4, "rows 48/64/128/160 (up to five wide passes), wide, decode layout");
    const MoeSet hot = make_moe(r, 8, 2880, 2880, 124, 131, 122, 131), hot_r = relaid_copy(hot);
    check_moe_counts(r, hot_r, cycle_counts(8, {20}), 4, "scales 122-131 (two multiplies), wide, decode layout");
    // the wide TMA kernel (GPTOSS_CUDA_MOE_STREAM_TMA=1; the policy keeps the wide kernel on cp.async)
    scoped.set("GPTOSS_CUDA_MOE_STREAM_TMA", "1");
    check_moe_counts(r, small, {12, 3, 8, 1, 12}, 3, "rows 12/3/8/1/12, wide, TMA forced");
    check_moe_counts(r, small_w, {33, 32, 17, 34, 20}, 4, "rows 33/32/17/34/20, wide, decode layout, TMA forced");
    check_moe_counts(r, real_w, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5, wide, decode layout, TMA forced");
    check_moe_counts(r, hot_r, cycle_counts(8, {20}), 4, "scales 122-131 (two multiplies), wide, decode layout, TMA forced");
  }
#endif
  // the cp.async ring where the TMA kernel is the default (GPTOSS_CUDA_MOE_STREAM_TMA=0), both widths of CTA
#if !defined(GPTOSS_GPU_CHECK_HIP)
  if (gc::moe_stream_uses_tma(gc::device_caps(0), gc::knobs(), 2880 / 32, gc::kMoeStreamTokens, gc::kMoeStreamShallowStages)) {
    ScopedEnv scoped({{"GPTOSS_CUDA_MOE_STREAM_TMA", "0"}});
    const MoeSet real_r = relaid_copy(real);
    check_moe_counts(r, small, {12, 3, 8, 1, 12}, 3, "rows 12/3/8/1/12, cp.async ring");
    check_moe_counts(r, odd, {33, 5, 40, 2, 0, 0}, 2, "rows 33/5/40/2 (three passes), cp.async ring");
    check_moe_counts(r, real_r, cycle_counts(32, {1, 3, 8, 17, 32, 0, 0, 5}), 4, "rows 1/3/8/17/32/0/0/5, decode layout, cp.async ring");
    scoped.set("GPTOSS_CUDA_MOE_STREAM_STAGES", "5");
    check_moe_counts(r, odd, {33, 5, 40, 2, 0, 0}, 2, "rows 33/5/40/2 (three passes), 5 stages, cp.async ring");
    scoped.set("GPTOSS_CUDA_MOE_STREAM_STAGES", nullptr);
    scoped.set("GPTOSS_CUDA_MOE_STREAM_TOKENS", "32");
    check_moe_counts(r, real_r, cycle_counts(32, {16}), 4, "rows 16 an expert (128 streams), wide, decode layout, cp.async ring");
  }
#endif
  check_moe(r, real, 64, 4, 1e-4);  // random routes, every batch path (gemm, mma, stream)
  check_moe(r, real, 1, 4, 1e-4);   // the decode path: every decode kernel and GPTOSS_CUDA_MOE_DECODE=stream
  check_moe(r, real, 4, 4, 1e-4);
  check_moe(r, small, 3, 2, 1e-4);
  if (!quick) {
    // 120b's 128 experts at its widths (top-4): some empty, 1..32 an expert
    MoeSet big = make_moe(r, 128, 2880, 2880);
    check_moe_counts(r, big, cycle_counts(128, {1, 3, 8, 17, 32, 0, 0, 0}), 4, "E128 rows 1/3/8/17/32/0/0/0");
    check_moe_counts(r, big, cycle_counts(128, {4}), 4, "E128 rows 4 an expert (128 streams)");
  }
}

// Which block-scaled MMA a "decode mma-mxf8" case ran: Blackwell's instruction, its emulation on e4m3 mma.sync, or
// neither (the chooser then takes another kernel: the row proves nothing about MmaMxf8).
std::string mxf8_note() {
#if defined(GPTOSS_GPU_CHECK_HIP)
  return " (not on AMD: another kernel ran)";
#else
  const gptoss::cuda::GpuCaps& caps = gptoss::cuda::device_caps(0);
  return caps.mma_block_scale ? " (block-scaled MMA, native)"
         : caps.fp8_compiled  ? " (block-scaled MMA emulated on e4m3 mma.sync)"
                              : " (no e4m3 MMA compiled: another kernel ran)";
#endif
}

// moe_mxf8_selftest, the check device.cu runs before MmaMxf8 becomes a Blackwell part's default, here on whatever
// block-scaled MMA this GPU has (the emulation before sm_120a): it must pass, or the self-test itself is wrong.
void check_mxf8_selftest() {
#if !defined(GPTOSS_GPU_CHECK_HIP)
  const gptoss::cuda::GpuCaps& caps = gptoss::cuda::device_caps(0);
  if (!caps.fp8_compiled && !caps.mma_block_scale) return;
  Stats st;
  st.rel = gptoss::cuda::moe_mxf8_selftest() ? 0.0 : 1.0;
  report("moe mxf8 self-test", "16 rows x 1 MX block", st, 0.0,
         std::string("moe_mxf8_selftest") + mxf8_note() + (caps.block_scale_selftest_failed ? "; FAILED at the device probe" : ""));
#endif
}

// The staged ring (GPTOSS_CUDA_MOE_STAGED, A/B) on the decode layout: against the CPU, and bit for bit against the
// one-tile kernels at its slice shape (GPTOSS_CUDA_MOE_SLICE=12), at 1, 2 and 3 slots, on the persistent grid and on
// 3 CTAs (GPTOSS_CUDA_MOE_STAGED_CTAS: every CTA walks many units across pairs and tokens). Rows past its 96 MX blocks
// take the one-tile kernels (said in the label).
void check_moe_staged(const MoeSet& m, const Tensor& gx, const Tensor& gei, const Tensor& gwt, const Tensor& want,
                      const std::string& shape, double tol) {
  SwigluParams sw;
  const int n = int(gx.dim(0));
  ScopedEnv env({{"GPTOSS_CUDA_MOE_SLICE", "12"}});
  Tensor ref = poisoned(DType::F32, {n, m.H});
  gpu->moe(gx, gei, gwt, m.gw, sw, ref);
  const Tensor ref_h = to_host(ref);
  const bool runs = gptoss::cuda::moe_staged_fits(m.H / 32) && gptoss::cuda::moe_staged_fits(m.I / 32);
  for (const char* slots : {"1", "2", "3"})
    for (const char* ctas : {"0", "3"}) {
      env.set("GPTOSS_CUDA_MOE_STAGED", slots);
      env.set("GPTOSS_CUDA_MOE_STAGED_CTAS", ctas);
      Tensor got = poisoned(DType::F32, {n, m.H});
      gpu->moe(gx, gei, gwt, m.gw, sw, got);
      const Tensor got_h = to_host(got);
      Stats s = compare(got_h, want);
      const double vs_one_tile = compare(got_h, ref_h).rel;
      if (vs_one_tile != 0) s.rel = 1;
      report("moe", shape, s, std::max(tol, 1e-4),
             std::string("decode mma-relaid, staged ring, ") + slots + (std::strcmp(slots, "1") ? " slots" : " slot") +
                 (std::strcmp(ctas, "0") ? ", 3 CTAs" : "") + (runs ? "" : " (rows past 96 MX blocks: the one-tile kernels)") +
                 " (against the one-tile kernels at slice 12: rel " + std::to_string(vs_one_tile) + ")");
    }
}

void check_moe(Rng& r, const MoeSet& m, int n, int k, double tol, bool relaid) {
  Tensor x = rand_f32(r, {n, m.H});
  const Routes routes = draw_routes(r, n, k, m.E);
  const Tensor &ei = routes.experts, &w = routes.weights;
  SwigluParams sw;
  Tensor want = host_empty(DType::F32, {n, m.H});
  cpu->moe(x, ei, w, m.cw, sw, want);
  const std::string shape = moe_shape(n, k, m);
  Tensor gx = to_gpu(x), gei = to_gpu(ei), gwt = to_gpu(w);
  if (n * k > 16) {
    // Past the decode kernels: the grouped GEMM tile and (NVIDIA) the grouped decode kernels
    // (GPTOSS_CUDA_MOE_BATCH, read at each call; the decode layout takes the tile only), both splitting x
    // into bf16 hi + lo: 1e-4.
    ScopedEnv scoped;
    for (const char* path : {"gemm", "mma", "stream"}) {
      const bool mma = !std::strcmp(path, "mma"), stream = !std::strcmp(path, "stream");
      if ((mma && relaid) || ((mma || stream) && kHip)) continue;  // the grouped decode kernels: checkpoint layout only
      if (stream && int64_t(n) * k > int64_t(gptoss::cuda::kMoeStreamMaxPerExpert) * m.E) continue;  // the tile's, not a decode batch
      scoped.set("GPTOSS_CUDA_MOE_BATCH", path);
      Tensor got = poisoned(DType::F32, {n, m.H});
      gpu->moe(gx, gei, gwt, m.gw, sw, got);
      report("moe", shape, compare(to_host(got), want), mma || stream ? std::max(tol, 1e-4) : tol,
             mma ? std::string("batch: grouped decode mma")
                 : stream ? std::string("batch: stream") + (relaid ? ", decode layout" : "") + moe_stream_note(n, k, m.E, m.H, m.I)
                          : std::string("grouped ") + gemm_tc() + (relaid ? ", decode layout" : ""));
    }
    return;
  }
  if (relaid) {  // the layout's one decode kernel (whatever GPTOSS_CUDA_MOE_DECODE says)
    Tensor got = poisoned(DType::F32, {n, m.H});
    gpu->moe(gx, gei, gwt, m.gw, sw, got);
    report("moe", shape, compare(to_host(got), want), std::max(tol, 1e-4), "decode mma-relaid (decode layout)");
    {  // gate_up writing down's B fragments (GPTOSS_CUDA_MOE_ACT_FRAGS, A/B): the same bits as the default
      const ScopedEnv frags({{"GPTOSS_CUDA_MOE_ACT_FRAGS", "1"}});
      Tensor got2 = poisoned(DType::F32, {n, m.H});
      gpu->moe(gx, gei, gwt, m.gw, sw, got2);
      Stats s = compare(to_host(got2), want);
      const double vs_default = compare(to_host(got2), to_host(got)).rel;
      if (vs_default != 0) s.rel = 1;
      report("moe", shape, s, std::max(tol, 1e-4),
             "decode mma-relaid, act as fragments (against the default: rel " + std::to_string(vs_default) + ")");
    }
    check_moe_staged(m, gx, gei, gwt, want, shape, tol);
    return;
  }
  // Decode: every kernel variant (GPTOSS_CUDA_MOE_DECODE, read at each call). The tensor-core
  // variants split the f32 activations into bf16 hi + lo like the grouped GEMM: same 1e-4 gate.
  ScopedEnv scoped;
  std::vector<const char*> variants = kHip ? std::vector<const char*>{"mfma", "simt"}
                                          : std::vector<const char*>{"mma", "mma-prmt", "mma-fp8", "mma-mxf8", "simt"};
  if (!kHip) variants.push_back("stream");
  for (const char* variant : variants) {
    scoped.set("GPTOSS_CUDA_MOE_DECODE", variant);
    Tensor got = poisoned(DType::F32, {n, m.H});
    gpu->moe(gx, gei, gwt, m.gw, sw, got);
    report("moe", shape, compare(to_host(got), want), std::strcmp(variant, "simt") ? std::max(tol, 1e-4) : tol,
           std::string("decode ") + variant + (std::strcmp(variant, "stream") ? "" : moe_stream_note(n, k, m.E, m.H, m.I)) +
               (std::strcmp(variant, "mma-mxf8") ? "" : mxf8_note()));
  }
}

// bf16 experts (loadModel's experts: 'bf16'): the CPU runs transformers' layout [E, in, out], CUDA the
// [E, out, in] rows the loader makes with cpu::transpose_experts (here a plain loop: an independent
// statement of the layout; test/bf16-experts-gpu.test.ts checks the two agree). Both paths on the
// same data whatever the chooser would pick (GPTOSS_CUDA_MOE_BF16, read at each call): the SIMT GEMVs
// sum f32 products (1e-5 as the MXFP4 SIMT kernels); the grouped tile splits the activations into bf16
// hi + lo (1e-4 as the MXFP4 tile).
struct MoeBf16Set {
  MoeWeights cw, gw;
  int E, H, I;
};
// [E, A, B] -> [E, B, A], 16-bit elements.
Tensor transposed_experts(const Tensor& t) {
  const int64_t E = t.dim(0), A = t.dim(1), B = t.dim(2);
  Tensor o = host_empty(t.dtype, {E, B, A});
  for (int64_t e = 0; e < E; ++e)
    for (int64_t a = 0; a < A; ++a)
      for (int64_t b = 0; b < B; ++b) o.ptr<uint16_t>()[(e * B + b) * A + a] = t.ptr<uint16_t>()[(e * A + a) * B + b];
  return o;
}
MoeBf16Set make_moe_bf16(Rng& r, int E, int H, int I) {
  MoeBf16Set m;
  m.E = E; m.H = H; m.I = I;
  const float scale = 1.f / std::sqrt(float(H));  // gate/up pre-activations of order 1 (some clamped at 7)
  m.cw.gate_up = rand_bf16(r, {E, H, 2 * I}, scale);
  m.cw.gate_up_bias = rand_bf16(r, {E, 2 * I}, 0.5f);
  m.cw.down = rand_bf16(r, {E, I, H}, 1.f / std::sqrt(float(I)));
  m.cw.down_bias = rand_f32(r, {E, H}, 0.5f);  // an f32 bias too (the GEMV's and the tile's other kind)
  m.gw.gate_up = to_gpu(transposed_experts(m.cw.gate_up));
  m.gw.gate_up_bias = to_gpu(m.cw.gate_up_bias);
  m.gw.down = to_gpu(transposed_experts(m.cw.down));
  m.gw.down_bias = to_gpu(m.cw.down_bias);
  return m;
}

void check_moe_bf16(Rng& r, const MoeBf16Set& m, int n, int k) {
  Tensor x = rand_f32(r, {n, m.H});
  const Routes routes = draw_routes(r, n, k, m.E);
  const Tensor &ei = routes.experts, &w = routes.weights;
  SwigluParams sw;
  Tensor want = host_empty(DType::F32, {n, m.H});
  cpu->moe(x, ei, w, m.cw, sw, want);
  const std::string shape = moe_shape(n, k, m) + " bf16";
  Tensor gx = to_gpu(x), gei = to_gpu(ei), gwt = to_gpu(w);
  ScopedEnv scoped;
  for (const char* path : {"gemv", "grouped"}) {
    scoped.set("GPTOSS_CUDA_MOE_BF16", path);
    Tensor got = poisoned(DType::F32, {n, m.H});
    gpu->moe(gx, gei, gwt, m.gw, sw, got);
    report("moe bf16", shape, compare(to_host(got), want), std::strcmp(path, "gemv") ? 1e-4 : 1e-5,
           std::string(path) + (moe_uses_decode(n, k) == (std::strcmp(path, "gemv") == 0) ? " (the default here)" : ""));
  }
}

// The layout rule: a GPU rejects transformers' [E, in, out] bf16 experts by shape (H != 2I here, and
// down's shape tells the layouts apart even when H == 2I).
void check_moe_bf16_layout_error(Rng& r) {
  ++cases;
  const int E = 3, H = 64, I = 32, k = 2;  // H == 2I: gate_up has the same shape in both layouts
  MoeBf16Set m = make_moe_bf16(r, E, H, I);
  MoeWeights wrong = m.gw;
  wrong.down = to_gpu(m.cw.down);  // [E, I, H]: transformers' layout
  Tensor x = to_gpu(rand_f32(r, {1, H})), ei = to_gpu(i32_tensor({0, 1}, {1, k}));
  Tensor wt = to_gpu(host_empty(DType::F32, {1, k})), out = gpu->empty(DType::F32, {1, H});
  std::string msg;
  try {
    gpu->moe(x, ei, wt, wrong, SwigluParams(), out);
  } catch (const std::exception& e) {
    msg = e.what();
  }
  const bool ok = msg.find("moe: down") != std::string::npos;
  if (!ok) ++failures;
  std::printf("%-5s %-18s %-44s %s\n", ok ? "PASS" : "FAIL", "moe bf16 layout", (std::string("down [E, I, H] on ") + kGpuName).c_str(),
              msg.empty() ? "no error" : msg.c_str());
}

void check_sample(Rng& r, int V) {
  Tensor l = rand_f32(r, {V}, 2.f);
  Tensor gl = to_gpu(l);
  struct P { float t; int k; float p; float mp; };
  const P ps[] = {{0, 0, 1, 0}, {1, 0, 1, 0}, {0.7f, 40, 1, 0}, {1, 0, 0.9f, 0}, {0.8f, 50, 0.95f, 0.05f},
                  {1.2f, 0, 1, 0.1f}, {1, 1, 1, 0}, {0.5f, 0, 0.5f, 0}};
  int total = 0, same = 0;
  for (const P& p : ps) {
    SampleParams sp;
    sp.temperature = p.t; sp.top_k = p.k; sp.top_p = p.p; sp.min_p = p.mp;
    for (int i = 0; i < 6; ++i) {
      float u = r.uniform();
      int32_t a = cpu->sample(l, sp, u), b = gpu->sample(gl, sp, u);
      ++total;
      same += a == b;
    }
  }
  Stats s;
  s.rel = double(total - same) / total;
  // exp() in another library may move a probability by an ulp: allow one miss in 48 draws
  report("sample", "V" + std::to_string(V) + " 8 settings x 6 draws", s, 1.0 / 40,
         std::to_string(same) + "/" + std::to_string(total) + " identical tokens");
}

// Token log-probabilities on the device (Backend::logprob_top, logprobs.cu: a block a row) against the CPU backend's
// (the row on the host, model/logprobs.cpp): several rows of one launch, tops 0..20 (mixed in a launch), o200k's
// width and small ones, rows with ties (equal logits: the lower id first), -Infinity entries, and a peaked row. The
// log-sum-exp and the top logprobs as one vector (rel L2), the ids exactly; outputs the kernel must write start as
// NaN-poisoned host vectors, so a missed one shows.
void check_logprob_top(Rng& r, int V) {
  ScopedEnv env{{"GPTOSS_CUDA_LOGPROBS", "device"}};  // the kernel (the default reads rows on the host)
  const int widths[] = {V, 1000, 33};
  for (int w : widths) {
    const int rows_n = 6;
    Tensor l = rand_f32(r, {rows_n, w}, 3.f);
    float* x = l.ptr<float>();
    for (int i = 0; i < w; i += 7) x[int64_t(1) * w + i] = x[int64_t(1) * w];        // row 1: many ties
    for (int i = 0; i < w; i += 3) x[int64_t(2) * w + i] = -INFINITY;               // row 2: -inf entries
    x[int64_t(3) * w + w / 2] += 40.f;                                              // row 3: peaked
    for (int i = 0; i < w; ++i) x[int64_t(4) * w + i] = float((i * 37) % 11) * 0.5f;  // row 4: few values, ties everywhere
    Tensor gl = to_gpu(l);
    const std::vector<int32_t> rows = {0, 1, 2, 3, 4, 5, 2};
    std::vector<int> tops = {0, 5, 20, 1, 20, 3, 7};
    for (int& t : tops) t = std::min(t, w);
    const std::vector<RowTop> want = cpu->logprob_top(l, rows, tops), got = gpu->logprob_top(gl, rows, tops);
    std::vector<float> a, b;
    int id_mismatch = 0, count_mismatch = 0;
    for (size_t j = 0; j < rows.size(); ++j) {
      a.push_back(got[j].lse);
      b.push_back(want[j].lse);
      if (got[j].ids.size() != want[j].ids.size() || got[j].logprobs.size() != want[j].logprobs.size()) {
        ++count_mismatch;
        continue;
      }
      for (size_t i = 0; i < want[j].ids.size(); ++i) {
        id_mismatch += got[j].ids[i] != want[j].ids[i];
        a.push_back(got[j].logprobs[i]);
        b.push_back(want[j].logprobs[i]);
      }
    }
    Tensor ta = host_empty(DType::F32, {int64_t(a.size())}), tb = host_empty(DType::F32, {int64_t(b.size())});
    std::copy(a.begin(), a.end(), ta.ptr<float>());
    std::copy(b.begin(), b.end(), tb.ptr<float>());
    Stats st = compare(ta, tb);
    if (id_mismatch || count_mismatch) st.rel = 1;
    report("logprob_top", "V" + std::to_string(w) + " 7 rows, tops 0..20", st, 1e-6,
           "ids mismatches " + std::to_string(id_mismatch) + ", counts " + std::to_string(count_mismatch));
    // the drawn id's logit: one float
    const int32_t id = w / 3;
    const float g = gpu->logit_at(gl, 3, id), c = cpu->logit_at(l, 3, id);
    report_flag("logit_at", "V" + std::to_string(w) + " row 3", g == c, "equal", "differ");
  }
}

// Unranked draws (top-k and top-p off: generate()'s default settings) on rows shaped to reach every branch of
// sample.cu's draws split in 2,048-value slices: vocabularies of one slice, a slice and a value, and
// o200k's 99 slices; logits flat and peaked (one slice holding nearly all the mass); temperatures and min-p;
// uniforms at 0 and just below 1; a row with a NaN, one with +Infinity and one all -Infinity (codes). Session
// draws (gpu->sample) against the CPU's, and a batch's rows (gpu->sample_rows, all rows in one launch) against
// the session draws, which run the same kernels: those must be equal.
void check_unranked_draws(Rng& r, int V) {
  struct P { float t; float mp; };
  const P ps[] = {{1, 0}, {0.6f, 0}, {1.3f, 0.02f}, {2.f, 0}, {1, 0.5f}};
  int total = 0, same_cpu = 0, same_rows = 0, codes_ok = 0, codes = 0;
  for (int shape = 0; shape < 4; ++shape) {
    const int v = shape == 0 ? std::min(V, 1000) : shape == 1 ? std::min(V, 2049) : V;
    Tensor l = rand_f32(r, {v}, shape == 3 ? 8.f : 2.f);
    if (shape == 3) l.ptr<float>()[v / 2] += 30.f;  // peaked: one token holds nearly all the mass
    Tensor gl = to_gpu(l);
    std::vector<int32_t> rows;
    std::vector<SampleParams> params;
    std::vector<float> us;
    std::vector<int32_t> single;
    for (const P& p : ps) {
      SampleParams sp;
      sp.temperature = p.t;
      sp.min_p = p.mp;
      for (int i = 0; i < 8; ++i) {
        const float u = i == 0 ? 0.f : i == 1 ? 0.99999994f : r.uniform();
        const int32_t a = cpu->sample(l, sp, u), b = gpu->sample(gl, sp, u);
        ++total;
        same_cpu += a == b;
        rows.push_back(0);
        params.push_back(sp);
        us.push_back(u);
        single.push_back(b);
      }
    }
    const std::vector<int32_t> batch = gpu->sample_rows(gl.reshaped({1, v}), rows, params, us);
    for (size_t i = 0; i < single.size(); ++i) same_rows += batch[i] == single[i];
  }
  // rows without a distribution: a NaN, +Infinity, everything -Infinity; each answers its code
  for (int kind = 0; kind < 3; ++kind) {
    const int v = std::min(V, 5000);
    Tensor l = rand_f32(r, {v}, 2.f);
    float* x = l.ptr<float>();
    if (kind == 0) x[v - 7] = NAN;
    if (kind == 1) x[123] = INFINITY;
    if (kind == 2) for (int i = 0; i < v; ++i) x[i] = -INFINITY;
    SampleParams sp;
    sp.temperature = 1.f;
    const int32_t a = cpu->sample(l, sp, 0.5f), b = gpu->sample(to_gpu(l), sp, 0.5f);
    ++codes;
    codes_ok += a == b && b < 0;
  }
  Stats s;
  s.rel = double(total - same_cpu) / total;
  report("sample_unranked", "V" + std::to_string(V) + " 4 shapes x 5 settings x 8 u", s, 1.0 / 40,
         std::to_string(same_cpu) + "/" + std::to_string(total) + " identical to the CPU's");
  const std::string rows_note = std::to_string(same_rows) + "/" + std::to_string(total) + " equal";
  report_flag("sample_unranked", "sample_rows == sample", same_rows == total, rows_note, rows_note);
  const std::string codes_note = std::to_string(codes_ok) + "/" + std::to_string(codes) + " codes as the CPU's";
  report_flag("sample_unranked", "rows without a distribution", codes_ok == codes, codes_note, codes_note);
}

// A batch's greedy rows (sample_rows at temperature 0: the split draws' max kernel and argmax_pick_kernel) against
// the CPU's and against the session's greedy draw (argmax_split_kernel), which must agree exactly: vocabularies of
// 1, 2 and 99 slices; random and peaked rows; the maximum tied at two indices (the lower wins) on either side of
// a slice boundary, at the row's ends and at random places; a NaN, +Infinity and all -Infinity (codes); rows
// listed out of order, one of them twice.
void check_greedy_rows(Rng& r, int V) {
  int total = 0, same_cpu = 0, same_session = 0;
  for (int shape = 0; shape < 3; ++shape) {
    const int v = shape == 0 ? std::min(V, 1000) : shape == 1 ? std::min(V, 2049) : V;
    const int R = 12;
    Tensor l = rand_f32(r, {R, v}, 2.f);
    for (int i = 0; i < R; ++i) {
      float* x = l.ptr<float>() + int64_t(i) * v;
      const int a = int(r.uniform() * float(v - 1)), b = std::min(v - 1, a + 1 + int(r.uniform() * 3000.f));
      switch (i) {
        case 1: x[v / 3] += 30.f; break;                                    // peaked
        case 2: x[2047 % v] = x[2048 % v] = 50.f; break;                    // a tie across the first slice boundary
        case 3: x[0] = x[v - 1] = 50.f; break;                              // a tie at the row's ends
        case 4: x[a] = x[b] = 50.f; break;                                  // a tie at random places
        case 5: x[v - 7] = NAN; break;                                      // codes
        case 6: x[std::min(v - 1, 123)] = INFINITY; break;
        case 7: for (int j = 0; j < v; ++j) x[j] = -INFINITY; break;
        case 8: for (int j = 0; j < v; ++j) x[j] = j == v - 2 ? 0.f : -INFINITY; break;  // one finite logit
        case 9: for (int j = 0; j < v; ++j) x[j] = 1.f; break;              // flat: index 0
        default: break;
      }
    }
    std::vector<int32_t> rows;
    for (int i = 0; i < R; ++i) rows.push_back((i * 7 + 3) % R);
    rows.push_back(rows[2]);  // a row drawn twice
    std::vector<SampleParams> params(rows.size());
    for (SampleParams& p : params) p.temperature = 0.f;
    const std::vector<float> us(rows.size(), 0.5f);
    Tensor gl = to_gpu(l);
    const std::vector<int32_t> want = cpu->sample_rows(l, rows, params, us);
    const std::vector<int32_t> got = gpu->sample_rows(gl, rows, params, us);
    for (size_t i = 0; i < rows.size(); ++i) {
      const int32_t session = gpu->sample(gl.rows(rows[i], 1).reshaped({v}), params[i], 0.5f);
      ++total;
      same_cpu += got[i] == want[i];
      same_session += got[i] == session;
    }
  }
  const std::string note = std::to_string(same_cpu) + "/" + std::to_string(total) + " identical to the CPU's, " +
                           std::to_string(same_session) + "/" + std::to_string(total) + " to the session's";
  report_flag("sample_greedy_rows", "V" + std::to_string(V) + " 3 vocabularies x 13 rows", same_cpu == total && same_session == total,
              note, note);
}

// ---- fused ops (backend.h): the CUDA kernel against the CPU backend's default composition; the
// note also gives the distance to CUDA's own unfused ops (gpu->Backend::op runs the default body).
std::string vs_unfused(double rel) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "vs cuda unfused rel %.1e", rel);
  return buf;
}

void check_add_rmsnorm(Rng& r, int n, int H) {
  Tensor x = rand_f32(r, {n, H}, 2.f), res = rand_f32(r, {n, H}, 2.f), w = rand_bf16(r, {H});
  Tensor gx = to_gpu(x), gx2 = to_gpu(x), gres = to_gpu(res), gw = to_gpu(w);
  Tensor want = host_empty(DType::F32, {n, H});
  cpu->add_rmsnorm(x, res, w, 1e-5f, want);  // x becomes x + res
  Tensor got = poisoned(DType::F32, {n, H}), unfused = poisoned(DType::F32, {n, H});
  gpu->add_rmsnorm(gx, gres, gw, 1e-5f, got);
  gpu->Backend::add_rmsnorm(gx2, gres, gw, 1e-5f, unfused);
  Tensor hgot = to_host(got);
  report("add_rmsnorm", shape_str({n, H}) + " normed", compare(hgot, want), 1e-5,
         vs_unfused(compare(hgot, to_host(unfused)).rel));
  report("add_rmsnorm", shape_str({n, H}) + " x += residual", compare(to_host(gx), x), 0.0);
}

// add_rmsnorm + router (the fused MoE-block opening): normed, x and the routing against the CPU's
// composition, and bit-exact against CUDA's own two ops.
// cluster_asked: run under GPTOSS_CUDA_ROUTER_CLUSTER=1; the report then says whether this GPU runs the cluster kernel
// or falls back to the split one.
void check_add_rmsnorm_router(Rng& r, int n, int H, int E, int k, bool cluster_asked = false) {
  Tensor x = rand_f32(r, {n, H}, 2.f), res = rand_f32(r, {n, H}, 2.f), nw = rand_bf16(r, {H});
  Tensor w = rand_bf16(r, {E, H}, 0.05f), b = rand_bf16(r, {E}, 0.1f);
  Tensor gx = to_gpu(x), gx2 = to_gpu(x), gres = to_gpu(res), gnw = to_gpu(nw), gw = to_gpu(w), gb = to_gpu(b);
  Tensor want = host_empty(DType::F32, {n, H}), wi = host_empty(DType::I32, {n, k}), ww = host_empty(DType::F32, {n, k});
  cpu->add_rmsnorm_router(x, res, nw, 1e-5f, want, w, b, k, wi, ww);  // x becomes x + res
  Tensor got = poisoned(DType::F32, {n, H}), gi = poisoned(DType::I32, {n, k}), gwt = poisoned(DType::F32, {n, k});
  Tensor un = poisoned(DType::F32, {n, H}), ui = poisoned(DType::I32, {n, k}), uw = poisoned(DType::F32, {n, k});
  gpu->add_rmsnorm_router(gx, gres, gnw, 1e-5f, got, gw, gb, k, gi, gwt);
  gpu->Backend::add_rmsnorm_router(gx2, gres, gnw, 1e-5f, un, gw, gb, k, ui, uw);
  std::string shape = shape_str({n, H}) + " E" + std::to_string(E) + " k" + std::to_string(k) + router_tag;
  if (cluster_asked) {
#if !defined(GPTOSS_GPU_CHECK_HIP)
    const bool cluster = gptoss::cuda::router_uses_cluster(gptoss::cuda::device_caps(0), gptoss::cuda::knobs(), n, E);
#else
    const bool cluster = false;
#endif
    shape += cluster ? " cluster" : " split (no cluster here)";
  }
  Tensor hgot = to_host(got), hi = to_host(gi), hw = to_host(gwt);
  report("add_rmsnorm_router", shape + " normed", compare(hgot, want), 1e-5, vs_unfused(compare(hgot, to_host(un)).rel));
  report("add_rmsnorm_router", shape + " x += residual", compare(to_host(gx), x), 0.0);
  int64_t mismatch = 0, vs_unfused_idx = 0;
  Tensor hui = to_host(ui);
  for (int64_t i = 0; i < int64_t(n) * k; ++i) {
    mismatch += hi.ptr<int32_t>()[i] != wi.ptr<int32_t>()[i];
    vs_unfused_idx += hi.ptr<int32_t>()[i] != hui.ptr<int32_t>()[i];
  }
  Stats s = compare(hw, ww);
  if (mismatch * 200 > int64_t(n) * k) s.rel = 1;  // an index may differ only at a true near-tie
  const double wrel = compare(hw, to_host(uw)).rel;
  if (vs_unfused_idx || wrel != 0) s.rel = 1;  // the fused kernel must equal CUDA's two ops exactly
  report("add_rmsnorm_router", shape + " routing", s, 1e-5,
         "idx mismatches " + std::to_string(mismatch) + "/" + std::to_string(n * k) + ", " + vs_unfused(wrel));
}

// Every router path: the router op (one block a token, split for few tokens), exact ties, and the fused
// add+norm+router in its split and cluster forms, each with the top-k in rounds and in one pass
// (GPTOSS_CUDA_ROUTER_RANK; the label's "rank" says which). gpu_check --router runs these alone, for the sanitizers.
void check_router_paths(Rng& r) {
  for (const char* rank : {"0", "1"}) {
    const ScopedEnv select({{"GPTOSS_CUDA_ROUTER_RANK", rank}});
    router_tag = *rank == '1' ? " rank" : "";
    check_router(r, 7, 96, 5, 2);
    check_router(r, quick ? 16 : 256, 2880, 32, 4);
    check_router(r, 1027, 2880, 32, 4);  // a long prefill (one block a token)
    check_router(r, 513, 2880, 128, 4);  // the 120b's experts
    check_router_ties(r, 3, 2880, 32, 4);
    check_router_ties(r, 2, 96, 20, 3);
    check_router_ties(r, 2, 96, 7, 7);  // k = E
    check_router_ties(r, 2, 2880, 128, 4);
    check_add_rmsnorm_router(r, 1, 2880, 32, 4);    // gpt-oss-20b decode
    check_add_rmsnorm_router(r, 3, 2880, 128, 4);   // 120b, a few tokens
    check_add_rmsnorm_router(r, 2, 1000, 20, 3);    // H/4 not a multiple of the block
    check_add_rmsnorm_router(r, 100, 2880, 32, 4);  // prefill: the two ops
    {  // the blocks of a token as one cluster, the logits handed over in distributed shared memory (A/B knob)
      const ScopedEnv cluster({{"GPTOSS_CUDA_ROUTER_CLUSTER", "1"}});
      check_add_rmsnorm_router(r, 1, 2880, 32, 4, true);  // 4 blocks
      check_add_rmsnorm_router(r, 3, 2880, 64, 4, true);  // 8 blocks, 3 clusters
      check_add_rmsnorm_router(r, 2, 1000, 20, 3, true);  // 3 blocks; H/4 not a multiple of the block or of 3
    }
  }
  router_tag = "";
}

void check_qkv(Rng& r, int n, int K, int Nq, int Nkv, double tol, const char* path) {
  Tensor x = rand_f32(r, {n, K});
  Tensor wq = rand_bf16(r, {Nq, K}, 0.05f), wk = rand_bf16(r, {Nkv, K}, 0.05f), wv = rand_bf16(r, {Nkv, K}, 0.05f);
  Tensor bq = rand_bf16(r, {Nq}), bk = rand_bf16(r, {Nkv}), bv = rand_bf16(r, {Nkv});
  Tensor q = host_empty(DType::F32, {n, Nq}), k = host_empty(DType::F32, {n, Nkv}), v = host_empty(DType::F32, {n, Nkv});
  cpu->qkv(x, wq, bq, wk, bk, wv, bv, q, k, v);
  Tensor gx = to_gpu(x), gwq = to_gpu(wq), gwk = to_gpu(wk), gwv = to_gpu(wv), gbq = to_gpu(bq), gbk = to_gpu(bk),
         gbv = to_gpu(bv);
  Tensor gq = poisoned(DType::F32, {n, Nq}), gk = poisoned(DType::F32, {n, Nkv}), gv = poisoned(DType::F32, {n, Nkv});
  gpu->qkv(gx, gwq, gbq, gwk, gbk, gwv, gbv, gq, gk, gv);
  Tensor uq = poisoned(DType::F32, {n, Nq}), uk = poisoned(DType::F32, {n, Nkv}), uv = poisoned(DType::F32, {n, Nkv});
  gpu->Backend::qkv(gx, gwq, gbq, gwk, gbk, gwv, gbv, uq, uk, uv);
  Tensor hq = to_host(gq), hk = to_host(gk), hv = to_host(gv);
  const double unfused = worst({compare(hq, to_host(uq)), compare(hk, to_host(uk)), compare(hv, to_host(uv))}).rel;
  report("qkv", shape_str({n, K}) + " q" + std::to_string(Nq) + " kv" + std::to_string(Nkv),
         worst({compare(hq, q), compare(hk, k), compare(hv, v)}), tol, std::string(path) + ", " + vs_unfused(unfused));
}

// add_rmsnorm + qkv (the fused attention-block opening from layer 1 on): q, k, v, normed and x
// against the CPU's composition, and bit-exact against CUDA's own two ops.
void check_add_rmsnorm_qkv(Rng& r, int n, int K, int Nq, int Nkv, const char* path, double tol = 1e-5) {
  Tensor x = rand_f32(r, {n, K}, 2.f), res = rand_f32(r, {n, K}, 2.f), nw = rand_bf16(r, {K});
  Tensor wq = rand_bf16(r, {Nq, K}, 0.05f), wk = rand_bf16(r, {Nkv, K}, 0.05f), wv = rand_bf16(r, {Nkv, K}, 0.05f);
  Tensor bq = rand_bf16(r, {Nq}), bk = rand_bf16(r, {Nkv}), bv = rand_bf16(r, {Nkv});
  Tensor gx = to_gpu(x), gx2 = to_gpu(x), gres = to_gpu(res), gnw = to_gpu(nw), gwq = to_gpu(wq), gwk = to_gpu(wk),
         gwv = to_gpu(wv), gbq = to_gpu(bq), gbk = to_gpu(bk), gbv = to_gpu(bv);
  Tensor xn = host_empty(DType::F32, {n, K});
  Tensor q = host_empty(DType::F32, {n, Nq}), k = host_empty(DType::F32, {n, Nkv}), v = host_empty(DType::F32, {n, Nkv});
  cpu->add_rmsnorm_qkv(x, res, nw, 1e-5f, xn, wq, bq, wk, bk, wv, bv, q, k, v);  // x becomes x + res
  Tensor gxn = poisoned(DType::F32, {n, K}), gq = poisoned(DType::F32, {n, Nq}), gk = poisoned(DType::F32, {n, Nkv}),
         gv = poisoned(DType::F32, {n, Nkv});
  Tensor uxn = poisoned(DType::F32, {n, K}), uq = poisoned(DType::F32, {n, Nq}), uk = poisoned(DType::F32, {n, Nkv}),
         uv = poisoned(DType::F32, {n, Nkv});
  gpu->add_rmsnorm_qkv(gx, gres, gnw, 1e-5f, gxn, gwq, gbq, gwk, gbk, gwv, gbv, gq, gk, gv);
  gpu->Backend::add_rmsnorm_qkv(gx2, gres, gnw, 1e-5f, uxn, gwq, gbq, gwk, gbk, gwv, gbv, uq, uk, uv);
  Tensor hq = to_host(gq), hk = to_host(gk), hv = to_host(gv), hxn = to_host(gxn), hx = to_host(gx);
  const double unfused = worst({compare(hq, to_host(uq)), compare(hk, to_host(uk)), compare(hv, to_host(uv)),
                                compare(hxn, to_host(uxn)), compare(hx, to_host(gx2))}).rel;
  Stats s = worst({compare(hq, q), compare(hk, k), compare(hv, v), compare(hxn, xn)});
  if (unfused != 0) s.rel = 1;  // the fused kernel must equal CUDA's two ops exactly
  const std::string shape = shape_str({n, K}) + " q" + std::to_string(Nq) + " kv" + std::to_string(Nkv);
  report("add_rmsnorm_qkv", shape + " q, k, v, normed", s, tol, std::string(path) + ", " + vs_unfused(unfused));
  report("add_rmsnorm_qkv", shape + " x += residual", compare(hx, x), 0.0);
}

// ---- the decode GEMV kernels under each knob (issue 12 item 2, issue 15: policy.h's choose_gemv,
// gemv_ctas_per_sm) ----
// Variants: the default kernels (gemv_xs_kernel for bf16 at 2..8 tokens and Q8_0 at 1..8, since the
// H200 run at 076961b), GPTOSS_CUDA_GEMV=warp (the opt-out: gemv_kernel / q8_gemv_kernel / gemv1), and
// GPTOSS_CUDA_GEMV_CTAS=1 / 2 (persistent grids of 1 or 2 CTAs a SM) with either. Each shape draws fresh weights and x once and runs every
// variant on them against the CPU (rel L2 <= 1e-5, no NaN, every output written: poisoned first); the
// note names the kernel choose_gemv picked and the largest difference from the default variant's
// output (predicted 0: the Xs kernel sums in the default kernels' order, bf16 as gemv_kernel and
// Q8_0 as q8_gemv_kernel, with exact int8 widening).
struct GemvVariant {
  const char* name;
  const char* gemv;  // GPTOSS_CUDA_GEMV
  const char* ctas;  // GPTOSS_CUDA_GEMV_CTAS
};
const GemvVariant kGemvVariants[] = {
    {"default", nullptr, nullptr}, {"warp", "warp", nullptr}, {"ctas1", nullptr, "1"}, {"warp ctas1", "warp", "1"}, {"ctas2", nullptr, "2"}};

// A variant's two knobs (null: unset), kept in the check's ScopedEnv until the check ends.
void set_gemv(ScopedEnv& env, const GemvVariant& v) {
  env.set("GPTOSS_CUDA_GEMV", v.gemv);
  env.set("GPTOSS_CUDA_GEMV_CTAS", v.ctas);
}

const char* gemv_kernel_name(GemvKernel k) {
  return k == GemvKernel::Xs ? "kernel xs" : k == GemvKernel::Row1 ? "kernel row1" : "kernel warp";
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::fabs(a.ptr<float>()[i] - b.ptr<float>()[i])));
  return m;
}

void check_gemv_shape(Rng& r, bool q8, int n, int K, int N, bool bias, const char* what) {
  Tensor x = rand_f32(r, {n, K});
  Tensor w = q8 ? rand_q8_0(r, {N, K}, 0.05f) : rand_bf16(r, {N, K}, 0.05f);
  Tensor b = rand_bf16(r, {N});
  Tensor want = host_empty(DType::F32, {n, N});
  cpu->linear(x, w, bias ? &b : nullptr, want);
  Tensor gx = to_gpu(x), gw = to_gpu(w), gb = to_gpu(b);
  ScopedEnv keep;
  Tensor first;
  for (const GemvVariant& v : kGemvVariants) {
    set_gemv(keep, v);
    Tensor got = poisoned(DType::F32, {n, N});
    gpu->linear(gx, gw, bias ? &gb : nullptr, got);
    Tensor h = to_host(got);
    std::string note = std::string(what) + ", " + v.name;
#if !defined(GPTOSS_GPU_CHECK_HIP)
    const GemvKernel kern = choose_gemv(gptoss::cuda::device_caps(0), knobs(), q8 ? GemvFormat::Q8 : GemvFormat::BF16,
                                        std::min(n, gptoss::cuda::kGemvMaxTokens), K, true);
    note += std::string(", ") + gemv_kernel_name(kern);
#endif
    if (!first.data) first = h;
    else note += ", max |diff| vs default " + std::to_string(max_abs_diff(h, first));
    report(q8 ? "gemv_q8_0" : "gemv_bf16", shape_str({n, K}) + "x" + shape_str({N, K}) + (bias ? "+b" : ""),
           compare(h, want), 1e-5, note);
  }
}

// Q8_0 q, k, v through qkv() (under xs one launch over the three parts) vs the CPU, each variant.
void check_qkv_q8(Rng& r, int n, int K, int Nq, int Nkv) {
  Tensor x = rand_f32(r, {n, K});
  Tensor wq = rand_q8_0(r, {Nq, K}, 0.05f), wk = rand_q8_0(r, {Nkv, K}, 0.05f), wv = rand_q8_0(r, {Nkv, K}, 0.05f);
  Tensor bq = rand_bf16(r, {Nq}), bk = rand_bf16(r, {Nkv}), bv = rand_bf16(r, {Nkv});
  Tensor q = host_empty(DType::F32, {n, Nq}), k = host_empty(DType::F32, {n, Nkv}), v = host_empty(DType::F32, {n, Nkv});
  cpu->qkv(x, wq, bq, wk, bk, wv, bv, q, k, v);
  Tensor gx = to_gpu(x), gwq = to_gpu(wq), gwk = to_gpu(wk), gwv = to_gpu(wv), gbq = to_gpu(bq), gbk = to_gpu(bk),
         gbv = to_gpu(bv);
  ScopedEnv keep;
  for (const GemvVariant& var : kGemvVariants) {
    set_gemv(keep, var);
    Tensor gq = poisoned(DType::F32, {n, Nq}), gk = poisoned(DType::F32, {n, Nkv}), gv = poisoned(DType::F32, {n, Nkv});
    gpu->qkv(gx, gwq, gbq, gwk, gbk, gwv, gbv, gq, gk, gv);
    report("qkv_q8_0", shape_str({n, K}) + " q" + std::to_string(Nq) + " kv" + std::to_string(Nkv),
           worst({compare(to_host(gq), q), compare(to_host(gk), k), compare(to_host(gv), v)}), 1e-5,
           std::string(var.name) + (var.gemv ? ": one launch" : ": three launches"));
  }
}

// Every GEMV shape of gpt-oss-20b / 120b decode (q/k/v as one launch, o, the LM head; bf16 and
// Q8_0) at 1, 2, 4, 5 and 8 tokens where it matters, small and odd shapes (partial lane strides, K
// not a multiple of a warp's units, the Xs kernel's K bound: K = 8192 keeps the default kernels), the
// fused qkv and add_rmsnorm_qkv under each variant.
void check_gemv_variants(Rng& r) {
  for (bool q8 : {false, true}) {
    check_gemv_shape(r, q8, 3, 64, 33, true, "small");
    check_gemv_shape(r, q8, 1, 96, 17, true, "small");
    check_gemv_shape(r, q8, 5, 544, 40, true, "odd: 17 Q8_0 blocks / 68 chunks a row");
    check_gemv_shape(r, q8, 2, 8192, 64, false, "K 8192: past the Xs bound");
    for (int n : {1, 2, 4, 8}) check_gemv_shape(r, q8, n, 2880, 5120, true, "q/k/v rows");
    for (int n : {1, 4, 8}) check_gemv_shape(r, q8, n, 4096, 2880, true, "o_proj");
    if (!quick) {
      check_gemv_shape(r, q8, 1, 2880, 201088, false, "lm_head");
      check_gemv_shape(r, q8, 4, 2880, 201088, false, "lm_head");
    }
  }
  for (int n : {1, 4}) check_qkv_q8(r, n, 2880, 4096, 512);
  check_qkv_q8(r, 3, 96, 40, 24);
  ScopedEnv keep;
  for (const GemvVariant& v : kGemvVariants) {
    set_gemv(keep, v);
    const std::string tag = std::string("gemv ") + v.name;
    check_qkv(r, 1, 2880, 4096, 512, 1e-5, tag.c_str());
    check_qkv(r, 4, 2880, 4096, 512, 1e-5, tag.c_str());
    check_add_rmsnorm_qkv(r, 1, 2880, 4096, 512, tag.c_str());
  }
}

// Rows `pos` of a cache [ctx, kvHeads, D] (f32 or bf16), gathered in that order.
Tensor cache_rows(const Tensor& cache, const std::vector<int32_t>& pos) {
  const int64_t bytes = int64_t(dtype_bytes(cache.dtype, cache.dim(1) * cache.dim(2)));
  Tensor t = host_empty(cache.dtype, {int64_t(pos.size()), cache.dim(1), cache.dim(2)});
  for (size_t i = 0; i < pos.size(); ++i)
    std::memcpy(static_cast<uint8_t*>(t.data) + i * bytes, static_cast<const uint8_t*>(cache.data) + pos[i] * bytes, bytes);
  return t;
}

void check_rope_kv_store(Rng& r, int n, int Hq, int Hkv, int D, int ctx, KvCacheType gpu_kv) {
  Tensor q = rand_f32(r, {n, Hq, D}), k = rand_f32(r, {n, Hkv, D}), v = rand_f32(r, {n, Hkv, D});
  std::vector<int32_t> pos(n);  // distinct rows of the cache, in random order
  for (int i = 0; i < n; ++i) {
    bool dup;
    do {
      pos[i] = r.below(ctx);
      dup = false;
      for (int j = 0; j < i; ++j) dup |= pos[j] == pos[i];
    } while (dup);
  }
  Tensor positions = i32_tensor(pos, {n});
  Tensor inv = host_empty(DType::F32, {D / 2});
  for (int j = 0; j < D / 2; ++j) inv.ptr<float>()[j] = std::pow(150000.f, -2.f * j / D);
  const float scale = 1.3465736f;
  Tensor gq = to_gpu(q), gk = to_gpu(k), gv = to_gpu(v), gpos = to_gpu(positions), ginv = to_gpu(inv);
  Tensor uq = to_gpu(q), uk = to_gpu(k);
  Tensor kc = cpu->empty(DType::F32, {ctx, Hkv, D}), vc = cpu->empty(DType::F32, {ctx, Hkv, D});
  cpu->rope_kv_store(q, k, v, positions, inv, scale, kc, vc);  // q, k rotated in place
  Tensor gkc = poisoned(gpu_kv.key, {ctx, Hkv, D}), gvc = poisoned(gpu_kv.value, {ctx, Hkv, D});
  Tensor ukc = poisoned(gpu_kv.key, {ctx, Hkv, D}), uvc = poisoned(gpu_kv.value, {ctx, Hkv, D});
  gpu->rope_kv_store(gq, gk, gv, gpos, ginv, scale, gkc, gvc);
  gpu->Backend::rope_kv_store(uq, uk, gv, gpos, ginv, scale, ukc, uvc);
  Tensor hq = to_host(gq), hk = to_host(gk), hkc = cache_rows(to_host(gkc), pos), hvc = cache_rows(to_host(gvc), pos);
  const double unfused = worst({compare(hq, to_host(uq)), compare(hk, to_host(uk)),
                                compare(hkc, cache_rows(to_host(ukc), pos)), compare(hvc, cache_rows(to_host(uvc), pos))}).rel;
  const std::string shape = "n" + std::to_string(n) + " Hq" + std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" +
                            std::to_string(D) + " ctx" + std::to_string(ctx);
  report("rope_kv_store", shape + " q, k", worst({compare(hq, q), compare(hk, k)}), 1e-5, vs_unfused(unfused));
  report("rope_kv_store", shape + " caches " + kv_cache_name(gpu_kv),
         worst({compare(hkc, cache_rows(kc, pos)), compare(hvc, cache_rows(vc, pos))}), store_tol(gpu_kv));
}

// Launch cost inside a graph: 24 layers' worth of the attention block's prologue, captured once
// fused (add_rmsnorm_qkv, rope_kv_store: 2 launches a layer) and once as the default compositions
// on CUDA (8 launches), 20b shapes, decode (n = 1). Weights are the same 29 MB for every layer (L2
// resident), so the difference is launches and tails, not bandwidth. Informational, not a case.
void time_fused_step(Rng& r) {
  const int L = 24, H = 2880, Hq = 64, Hkv = 8, D = 64, ctx = 4096;
  Tensor x = to_gpu(rand_f32(r, {1, H})), res = to_gpu(rand_f32(r, {1, H})), xn = gpu->empty(DType::F32, {1, H});
  Tensor nw = to_gpu(rand_bf16(r, {H}));
  Tensor wq = to_gpu(rand_bf16(r, {Hq * D, H}, 0.05f)), wk = to_gpu(rand_bf16(r, {Hkv * D, H}, 0.05f)),
         wv = to_gpu(rand_bf16(r, {Hkv * D, H}, 0.05f));
  Tensor bq = to_gpu(rand_bf16(r, {Hq * D})), bk = to_gpu(rand_bf16(r, {Hkv * D})), bv = to_gpu(rand_bf16(r, {Hkv * D}));
  Tensor q = gpu->empty(DType::F32, {1, Hq * D}), k = gpu->empty(DType::F32, {1, Hkv * D}),
         v = gpu->empty(DType::F32, {1, Hkv * D});
  Tensor q3 = q.reshaped({1, Hq, D}), k3 = k.reshaped({1, Hkv, D}), v3 = v.reshaped({1, Hkv, D});
  Tensor kc = gpu->empty(gpu->default_kv_type().key, {ctx, Hkv, D}), vc = gpu->empty(gpu->default_kv_type().value, {ctx, Hkv, D});
  Tensor pos = to_gpu(i32_tensor({ctx / 2}, {1}));
  Tensor inv = host_empty(DType::F32, {D / 2});
  for (int j = 0; j < D / 2; ++j) inv.ptr<float>()[j] = std::pow(150000.f, -2.f * j / D);
  Tensor ginv = to_gpu(inv);
  auto fused = [&] {
    for (int l = 0; l < L; ++l) {
      gpu->add_rmsnorm_qkv(x, res, nw, 1e-5f, xn, wq, bq, wk, bk, wv, bv, q, k, v);
      gpu->rope_kv_store(q3, k3, v3, pos, ginv, 1.f, kc, vc);
    }
  };
  auto unfused = [&] {
    for (int l = 0; l < L; ++l) {
      gpu->Backend::add_rmsnorm(x, res, nw, 1e-5f, xn);
      gpu->Backend::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v);
      gpu->Backend::rope_kv_store(q3, k3, v3, pos, ginv, 1.f, kc, vc);
    }
  };
  int owner = 0;
  auto time_us = [&](uint64_t key, const std::function<void()>& step) {
    for (int i = 0; i < 5; ++i) gpu->run_step(key, &owner, step);  // capture + warm-up
    gpu->synchronize();
    std::vector<double> t;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 20; ++i) gpu->run_step(key, &owner, step);
      gpu->synchronize();
      t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 20);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const double a = time_us(1, unfused), b = time_us(2, fused);
  gpu->forget_steps(&owner);
  std::printf("INFO  fused_timing       24 layers, graph, n=1, 20b shapes: unfused %.1f us (8 launches/layer), fused %.1f us "
              "(2/layer): %.2f us per launch saved, %.3f ms per 24-layer token\n",
              a, b, (a - b) / (L * 6), (a - b) / 1000.0);
  std::fflush(stdout);
}

// run_step: capture a small step (rmsnorm -> rope -> linear -> add, positions from a device tensor),
// replay it with new contents, compare with the same ops run eagerly.
void check_graph(Rng& r) {
  const int n = 1, H = 256, heads = 4, D = 64;
  Tensor x = gpu->empty(DType::F32, {n, H}), xn = gpu->empty(DType::F32, {n, H}), y = gpu->empty(DType::F32, {n, H});
  Tensor pos = gpu->empty(DType::I32, {n});
  Tensor w = to_gpu(rand_bf16(r, {H, H}, 0.05f)), nw = to_gpu(rand_bf16(r, {H}));
  Tensor inv = host_empty(DType::F32, {D / 2});
  for (int j = 0; j < D / 2; ++j) inv.ptr<float>()[j] = std::pow(10000.f, -2.f * j / D);
  Tensor ginv = to_gpu(inv);
  auto step = [&] {
    gpu->rmsnorm(x, nw, 1e-5f, xn);
    Tensor v = xn.reshaped({n, heads, D});
    gpu->rope(v, pos, ginv, 1.f);
    gpu->linear(xn, w, nullptr, y);
    gpu->add(y, x);
  };
  double worst = 0;
  int key_owner = 0;
  for (int it = 0; it < 4; ++it) {
    Tensor hx = rand_f32(r, {n, H});
    int32_t p = r.below(4096);
    gpu->copy_from_host(x, hx.data, hx.nbytes());
    gpu->copy_from_host(pos, &p, 4);
    gpu->run_step(42, &key_owner, step);  // it 0 captures, then replays
    Tensor got = to_host(y);
    gpu->copy_from_host(x, hx.data, hx.nbytes());
    step();  // eager
    Tensor want = to_host(y);
    worst = std::max(worst, compare(got, want).rel);
  }
  gpu->forget_steps(&key_owner);
  Stats s;
  s.rel = worst;
  report("run_step(graph)", "rmsnorm+rope+linear+add, 4 replays", s, 0.0, "replay == eager, bit-exact");
}

}  // namespace

// ---- split-K of dense bf16 problems on the wgmma tile (gemm_wgmma.cu kSplit, 14th session) ----
// The decode batch's q/k/v and o at 64-128 rows under the default policy (3 and 5 splits on a 132-SM
// Hopper), then GPTOSS_CUDA_GEMM_SPLITK=8 (at most the K steps) on ragged shapes: K not a multiple of 64,
// splits of one and two K steps, partial row and column tiles, 3 column parts; outputs poisoned (every
// one written), against the CPU at the GEMM tile's tolerance. Skipped where the wgmma tile does not run.
void check_gemm_splitk(Rng& r) {
#if !defined(GPTOSS_GPU_CHECK_HIP)
  namespace gc = gptoss::cuda;
  const gc::GpuCaps& caps = gc::device_caps(0);
  if (gc::gemm_tile_kind(caps, 64) != gc::GemmTileKind::Wgmma) return;
  ScopedEnv scoped({{"GPTOSS_CUDA_GEMM_SPLITK", nullptr}});
  auto label = [&](const char* what, int rows, int K, int col_tiles) {
    const int bm = gc::gemm_tile_rows(caps, rows, false, K);
    const int splits = gc::wgmma_dense_splits(caps, gc::knobs(), col_tiles * ((rows + bm - 1) / bm), (K + 63) / 64);
    return std::string(what) + ", wgmma split-K " + std::to_string(splits);
  };
  check_linear(r, 64, 2880, 5120, false, true, 1e-4, label("q/k/v at 64 streams", 64, 2880, 40).c_str());
  check_linear(r, 64, 4096, 2880, false, true, 1e-4, label("o at 64 streams", 64, 4096, 23).c_str());
  check_linear(r, 128, 2880, 5120, false, true, 1e-4, label("q/k/v at 128 streams (128-row tile)", 128, 2880, 40).c_str());
  check_linear(r, 100, 4096, 2880, false, false, 1e-4, label("o at 100 rows (partial 128-row tile)", 100, 4096, 23).c_str());
  check_qkv(r, 64, 2880, 4096, 512, 1e-4, label("3 parts at 64 streams", 64, 2880, 40).c_str());
  scoped.set("GPTOSS_CUDA_GEMM_SPLITK", "8");
  check_linear(r, 70, 200, 136, false, true, 1e-4, label("forced, K % 64 = 8, 4 steps", 70, 200, 2).c_str());
  check_linear(r, 65, 520, 200, false, true, 1e-4, label("forced, 9 steps", 65, 520, 2).c_str());
  check_linear(r, 130, 1000, 264, false, true, 1e-4, label("forced, 128-row tiles, 2 row tiles", 130, 1000, 3).c_str());
  check_qkv(r, 80, 1000, 200, 72, 1e-4, label("forced, 3 parts, partial column tiles", 80, 1000, 4).c_str());
  scoped.set("GPTOSS_CUDA_GEMM_SPLITK", "1");
  check_linear(r, 64, 2880, 5120, false, true, 1e-4, label("off", 64, 2880, 40).c_str());
#else
  (void)r;
#endif
}

// ---- the wgmma GEMM tile (issue 12 item 4; GPTOSS_CUDA_GEMM=wgmma, which `auto` picks on sm_90a;
// scripts/gpu-wgmma-ab.sh was its first A/B) ----
// Every problem the GEMM tile carries, with the knob set, against the CPU on fresh random data and
// the same tolerances as the mma.sync tile (1e-4: A as bf16 hi + lo, exact products, f32 sums), outputs
// poisoned first (unwritten and NaN counted): linear bf16 / MXFP4 / Q8_0 (chunks through the bf16
// tile) with partial row, column and K tiles; q, k, v as one launch of 3 column parts; the grouped
// MoE GEMMs (MXFP4 experts in the checkpoint layout and in the decode layout, bf16 experts) over
// expert groups of 1..N rows, 64- and 128-row tiles. The first case fails unless the policy picked
// the wgmma tile on this device (an sm_90a image on Hopper): a run elsewhere proves nothing; the second
// unless the default (knob unset) splits the problems there as policy.h says (dense on wgmma from 64
// rows, the grouped MoE from 128 routed rows an expert).
void check_gemm_wgmma(Rng& r) {
  const ScopedEnv scoped({{"GPTOSS_CUDA_GEMM", "wgmma"}});
#if !defined(GPTOSS_GPU_CHECK_HIP)
  const gptoss::cuda::GpuCaps& caps = gptoss::cuda::device_caps(0);
  namespace gc = gptoss::cuda;
  const bool picked = gc::gemm_tile_kind(caps, 9) == gc::GemmTileKind::Wgmma &&
                      gc::moe_gemm_tile_kind(caps, 512, 4, 128) == gc::GemmTileKind::Wgmma;
  // The default (knob unset) on this device: the per-problem policy (policy.h), from the real caps.
  gc::GpuKnobs auto_k = gc::knobs();
  auto_k.gemm = gc::GpuKnobs::Gemm::Auto;
  const bool per_problem = gc::gemm_tile_kind(caps, auto_k, 512) == gc::GemmTileKind::Wgmma &&
                           gc::gemm_tile_kind(caps, auto_k, gc::gemv_max_tokens(caps, auto_k)) == gc::GemmTileKind::MmaSync &&
                           gc::moe_gemm_tile_kind(caps, auto_k, 2048, 4, 32) == gc::GemmTileKind::Wgmma &&
                           gc::moe_gemm_tile_kind(caps, auto_k, 512, 4, 32) == gc::GemmTileKind::MmaSync;
#else
  const bool picked = false, per_problem = false;
#endif
  report_flag("gemm wgmma", "policy", picked, "GPTOSS_CUDA_GEMM=wgmma picks the wgmma tile",
              "the wgmma tile is NOT picked on this device/image");
  report_flag("gemm wgmma", "default policy", per_problem,
              "unset: dense >= 64 rows and MoE >= 128 rows an expert on wgmma, the rest mma.sync",
              "the per-problem default does NOT pick wgmma as policy.h says on this device/image");
  if (picked) {
    // linear (one group): tiny, partial everything; K not a multiple of the 64-wide stage; 64- and 128-row tiles
    check_linear(r, 33, 40, 17, false, true, 1e-4, "gemm wgmma");
    check_linear(r, 70, 200, 136, false, true, 1e-4, "gemm wgmma, 64-row tile, K % 64 = 8");
    check_linear(r, 130, 200, 264, false, false, 1e-4, "gemm wgmma, 128-row tile");
    check_linear(r, 40, 64, 33, true, false, 1e-4, "gemm wgmma mxfp4");
    check_linear(r, 100, 160, 72, true, true, 1e-4, "gemm wgmma mxfp4, 5 MX blocks (half a stage)");
    check_linear(r, quick ? 20 : 77, 2880, quick ? 640 : 5120, false, true, 1e-4, "gemm wgmma qkv");
    check_linear(r, 512, 4096, 2880, false, true, 1e-4, "gemm wgmma o_proj");
    check_linear(r, quick ? 300 : 2048, 2880, quick ? 640 : 4096, false, true, 1e-4, "gemm wgmma q, prefill 2048");
    check_linear(r, 300, 2880, 5760, true, true, 1e-4, "gemm wgmma mxfp4 expert");
    check_linear_q8(r, 40, 96, 33, true, 1e-4, "gemm wgmma q8");
    check_linear_q8(r, quick ? 20 : 77, 2880, quick ? 640 : 5120, true, 1e-4, "gemm wgmma q8 qkv");
    check_qkv(r, quick ? 20 : 77, 2880, quick ? 640 : 4096, quick ? 128 : 512, 1e-4, "wgmma, one gemm, 3 parts");
    check_qkv(r, 40, 64, 200, 72, 1e-4, "wgmma, one gemm, 3 parts, partial column tiles");
    check_qkv(r, quick ? 130 : 2048, 2880, 4096, 512, 1e-4, "wgmma, one gemm, 3 parts, prefill");
    // grouped MoE (MXFP4), twice: the warp-specialized kernel (GPTOSS_CUDA_GEMM_WS=1, where it fits: policy.h
    // wgmma_grouped_ws), then GPTOSS_CUDA_GEMM_WS=0 (every thread in every role)
#if !defined(GPTOSS_GPU_CHECK_HIP)
    gc::GpuKnobs ws_k = gc::knobs();
    ws_k.gemm_ws = true;
    const bool ws_picked = gc::wgmma_grouped_ws(caps, ws_k, 128, 2880) && gc::wgmma_grouped_ws(caps, ws_k, 64, 2880);
#else
    const bool ws_picked = false;
#endif
    report_flag("gemm wgmma", "ws policy", ws_picked,
                "GPTOSS_CUDA_GEMM_WS=1: the grouped MXFP4 problems (K 2880) take the warp-specialized kernel",
                "GPTOSS_CUDA_GEMM_WS=1: the warp-specialized kernel is NOT picked for K 2880 on this device");
    for (const char* ws : {"1", "0"}) {
      const ScopedEnv scoped({{"GPTOSS_CUDA_GEMM_WS", ws}});
      // grouped MoE (MXFP4): n k > 16 takes the grouped paths; check_moe runs GPTOSS_CUDA_MOE_BATCH=gemm (the tile)
      MoeSet small = make_moe(r, 5, 64, 96);
      check_moe(r, small, 40, 2, 1e-4);
      MoeSet odd = make_moe(r, 6, 544, 320);  // 17 and 10 MX blocks a row: partial stages, partial column tiles
      check_moe(r, odd, 50, 3, 1e-4);
      check_moe(r, odd, 7, 3, 1e-4);          // groups of 1..7 rows
      MoeSet mid = make_moe(r, 8, 256, 256);
      check_moe(r, mid, 9, 4, 1e-4);          // groups of 1..N pairs an expert
      check_moe(r, mid, 48, 2, 1e-4);
      const MoeSet small_r = relaid_copy(small), odd_r = relaid_copy(odd);
      check_moe(r, small_r, 40, 2, 1e-4, true);
      check_moe(r, odd_r, 50, 3, 1e-4, true);
      if (!quick) {
        MoeSet real = make_moe(r, 32, 2880, 2880);
        check_moe(r, real, 77, 4, 1e-4);
        check_moe(r, real, 512, 4, 1e-4);    // 64 rows an expert: 64-row tiles
        check_moe(r, real, 2048, 4, 1e-4);   // 256 an expert: 128-row tiles (20b prefill 2048)
        const MoeSet real_r = relaid_copy(real);
        check_moe(r, real_r, 512, 4, 1e-4, true);
        check_moe_act_bf16(r, real, 2048, 4, false);
        check_moe_act_bf16(r, real_r, 1024, 4, true);
      }
      check_moe_act_bf16(r, odd, 50, 3, false);  // partial stages and column tiles, bf16-only activations
    }
    // bf16 experts through the tile (GPTOSS_CUDA_MOE_BF16=grouped inside check_moe_bf16)
    MoeBf16Set bsmall = make_moe_bf16(r, 5, 64, 96);
    check_moe_bf16(r, bsmall, 40, 2);
    MoeBf16Set bodd = make_moe_bf16(r, 6, 544, 320);
    check_moe_bf16(r, bodd, 50, 4);
    if (!quick) {
      MoeBf16Set breal = make_moe_bf16(r, 8, 2880, 2880);
      check_moe_bf16(r, breal, 512, 4);
    }
  }
}

// Every attention path against the CPU: the slot store, paged attention, prefill (flash, naive) and decode (SIMT
// split-KV, and the tensor-core kernel) over the cache types (`--only-attn` runs these alone).
void check_attention_paths(Rng& r) {
  // the batched step's ops: paged attention (decode kernel; plan + decode + flash; flash alone;
  // plain kernel), rope + KV store to pool slots
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 8, 2, 64, 0, 16, kKvF32, 1e-5, "decode");
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 128, 16, kKvBF16, 1e-2, "decode window");
  check_paged_attention(r, {201, 100, 5, 1, 77}, {1, 70, 5, 1, 1}, 8, 2, 64, 16, 16, kKvBF16, 1.5e-2, "mixed: plan");
  check_paged_attention(r, {201, 100, 5, 1, 77}, {1, 70, 5, 1, 1}, 64, 8, 64, 0, 5, kKvF32, 1e-4, "mixed: plan");
  check_paged_attention(r, {150}, {100}, 8, 2, 64, 16, 16, kKvBF16, 1.5e-2, "flash alone");
  check_paged_attention(r, {40, 9}, {3, 1}, 6, 3, 32, 7, 4, kKvF32, 1e-5, "odd D: plain");
  {
    std::vector<int> lens(quick ? 40 : 128), ones(lens.size(), 1);
    for (size_t i = 0; i < lens.size(); ++i) lens[i] = 1 + int((i * 37) % 900);
    check_paged_attention(r, lens, ones, 64, 8, 64, 0, 16, kKvBF16, 1e-2, "decode, many");
    check_paged_attention(r, lens, ones, 64, 8, 64, 128, 16, kKvF32, 1e-5, "decode, many, window");
  }
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 128, 16, kKvF16, 1e-5, "decode window");
  check_paged_attention(r, {201, 100, 5, 1, 77}, {1, 70, 5, 1, 1}, 8, 2, 64, 16, 16, kKvF16, 1e-4, "mixed: plan");
  check_paged_attention(r, {40, 9}, {3, 1}, 6, 3, 32, 7, 4, kKvF16, 1e-5, "odd D: plain");
  check_rope_kv_store_slots(r, 37, 8, 2, 64, 160, kKvBF16);
  check_rope_kv_store_slots(r, 37, 8, 2, 64, 160, kKvF16);
  check_rope_kv_store_slots(r, 5, 64, 8, 64, 64, kKvF32);
  // f32k-f16v (f32 K, f16 V: the default cache): the decode kernel, plan + decode + flash,
  // the plain kernel, and the slot store. Prediction: as f16's tolerances (V holds f16 values exactly).
  check_paged_attention(r, {1, 17, 64, 130, 300}, {1, 1, 1, 1, 1}, 64, 8, 64, 128, 16, kKvF32KF16V, 1e-5, "decode window");
  check_paged_attention(r, {201, 100, 5, 1, 77}, {1, 70, 5, 1, 1}, 8, 2, 64, 16, 16, kKvF32KF16V, 1e-4, "mixed: plan");
  check_paged_attention(r, {40, 9}, {3, 1}, 6, 3, 32, 7, 4, kKvF32KF16V, 1e-5, "odd D: plain");
  check_rope_kv_store_slots(r, 37, 8, 2, 64, 160, kKvF32KF16V);
  // attention (cpu cache f32; cuda caches f16, bf16 and f32)
  // f16 (the default cache): every path, prefill, decode, windows, naive
  check_attention(r, 48, 8, 2, 64, 48, 16, iota_pos(48, 0), kKvF16, 1e-4);     // tiny-a prefill
  check_attention(r, 1, 8, 2, 64, 48, 16, {47}, kKvF16, 1e-5);                  // tiny-a decode
  check_attention(r, 3, 8, 2, 64, 48, 0, {20, 30, 47}, kKvF16, 1e-5);
  check_attention(r, 37, 6, 3, 32, 50, 7, iota_pos(37, 13), kKvF16, 1e-5);     // odd D -> naive
  check_attention(r, 1, 64, 8, 64, quick ? 300 : 8192, 0, {quick ? 299 : 8191}, kKvF16, 1e-5);
  check_attention(r, 2, 64, 8, 64, 2048, 300, {1500, 1501}, kKvF16, 1e-5);      // window over splits
  check_attention(r, quick ? 70 : 512, 64, 8, 64, quick ? 70 : 512, 0, iota_pos(quick ? 70 : 512, 0), kKvF16, 1e-4);
  if (!quick) check_attention(r, 700, 64, 8, 64, 1024, 128, iota_pos(700, 300), kKvF16, 1e-4);
  // f32k-f16v: every path, as f16 above (the default cache)
  check_attention(r, 48, 8, 2, 64, 48, 16, iota_pos(48, 0), kKvF32KF16V, 1e-4);    // tiny-a prefill (flash)
  check_attention(r, 1, 8, 2, 64, 48, 16, {47}, kKvF32KF16V, 1e-5);                 // tiny-a decode
  check_attention(r, 37, 6, 3, 32, 50, 7, iota_pos(37, 13), kKvF32KF16V, 1e-5);    // odd D -> naive
  check_attention(r, 1, 64, 8, 64, quick ? 300 : 8192, 0, {quick ? 299 : 8191}, kKvF32KF16V, 1e-5);
  check_attention(r, 2, 64, 8, 64, 2048, 300, {1500, 1501}, kKvF32KF16V, 1e-5);     // window over splits
  check_attention(r, quick ? 70 : 512, 64, 8, 64, quick ? 70 : 512, 0, iota_pos(quick ? 70 : 512, 0), kKvF32KF16V, 1e-4);
  check_attention(r, 48, 8, 2, 64, 48, 16, iota_pos(48, 0), kKvBF16, 1.5e-2);   // tiny-a prefill
  check_attention(r, 48, 8, 2, 64, 48, 0, iota_pos(48, 0), kKvF32, 1e-4);
  check_attention(r, 1, 8, 2, 64, 48, 16, {47}, kKvF32, 1e-5);                  // tiny-a decode
  check_attention(r, 3, 8, 2, 64, 48, 0, {20, 30, 47}, kKvBF16, 1e-2);
  check_attention(r, 37, 6, 3, 32, 50, 7, iota_pos(37, 13), kKvF32, 1e-5);     // odd D -> naive
  check_attention(r, 1, 64, 8, 64, quick ? 300 : 8192, 0, {quick ? 299 : 8191}, kKvBF16, 1e-2);
  check_attention(r, 1, 64, 8, 64, quick ? 300 : 8192, 128, {quick ? 299 : 5000}, kKvF32, 1e-5);
  check_attention(r, 1, 64, 8, 64, 1000, 0, {517}, kKvBF16, 1e-2);               // empty splits
  check_attention(r, 2, 64, 8, 64, 2048, 300, {1500, 1501}, kKvF32, 1e-5);      // window over splits
  check_attention(r, quick ? 70 : 512, 64, 8, 64, quick ? 70 : 512, 0, iota_pos(quick ? 70 : 512, 0), kKvBF16, 1.5e-2);
  if (!quick) check_attention(r, 700, 64, 8, 64, 1024, 128, iota_pos(700, 300), kKvBF16, 1.5e-2);
  if (!quick) check_attention(r, 300, 64, 8, 64, 1024, 0, iota_pos(300, 700), kKvF32, 1e-4);
  check_attention_decode_mma(r);
}

int main(int argc, char** argv) {
  uint64_t seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--only-moe")) only_moe = true;  // the MoE cases alone (sanitizer runs)
    else if (!std::strcmp(argv[i], "--bf16-experts")) bf16_experts = true;
    else if (!std::strcmp(argv[i], "--gemv")) only_gemv = true;  // the GEMV variants alone (scripts/gpu-gemv-ab.sh)
    else if (!std::strcmp(argv[i], "--only-attn-mma")) only_attn_mma = true;  // the decode mma cases alone
    else if (!std::strcmp(argv[i], "--only-attn")) only_attn = true;  // every attention path alone (sanitizer runs)
    else if (!std::strcmp(argv[i], "--gemm-wgmma")) only_gemm_wgmma = true;  // the wgmma GEMM tile alone (scripts/gpu-wgmma-ab.sh)
    else if (!std::strcmp(argv[i], "--moe-stream")) only_moe_stream = true;  // the streaming batch MoE alone (scripts/gpu-moe-batch-ab.sh)
    else if (!std::strcmp(argv[i], "--gemm-splitk")) only_splitk = true;  // split-K of the dense wgmma GEMMs alone
    else if (!std::strcmp(argv[i], "--sample")) only_sample = true;  // the draws alone
    else if (!std::strcmp(argv[i], "--router")) only_router = true;  // every router path alone (sanitizer runs)
    else if (kHip && !std::strcmp(argv[i], "--build-info")) {
      // What this program would run on: the ROCm runtime it loaded and the plugin beside it (no device
      // touched; test/hip-check.test.ts reads it on machines without an AMD GPU).
      const HipBuildInfo info = hip_build_info();
      std::printf("runtime %s (version %d)\nplugin %s (%s)\narchs %s\n", info.runtime.empty() ? "-" : info.runtime.c_str(),
                  info.runtime_version, info.plugin_path.c_str(), info.plugin_loaded ? "loaded" : "not loaded",
                  info.archs.empty() ? "-" : info.archs.c_str());
      if (!info.error.empty()) std::printf("error %s\n", info.error.c_str());
      return info.plugin_loaded ? 0 : 1;
    } else {
      std::fprintf(stderr, "gpu_check: unknown argument '%s' (--quick, --seed N, --only-moe, --bf16-experts, --gemv, --only-attn-mma, --only-attn, --gemm-wgmma, --moe-stream, --gemm-splitk, --sample, --router%s)\n", argv[i],
                   kHip ? ", --build-info" : "");
      return 64;
    }
  }
  const std::string reason = kHip ? hip_unavailable_reason() : cuda_unavailable_reason();
  if (!reason.empty()) {
    std::printf("gpu_check: %s unavailable: %s\n", kHip ? "HIP" : "CUDA", reason.c_str());
    return 2;
  }
  cpu = get_backend({DeviceKind::CPU, 0});
  gpu = get_backend({kHip ? DeviceKind::HIP : DeviceKind::CUDA, 0});
  std::printf("gpu_check seed %llu%s\n  cpu:  %s\n  %s: %s\n", (unsigned long long)seed, quick ? " (quick)" : "",
              cpu->describe().c_str(), kGpuName, gpu->describe().c_str());
  Rng r(seed);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (only_sample) {
      check_sample(r, 201088);
      check_logprob_top(r, 201088);
      check_unranked_draws(r, 201088);  // its rows of 1 and 2 slices too
      check_greedy_rows(r, 201088);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_router) {
      check_router_paths(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_splitk) {
      check_gemm_splitk(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_moe_stream) {
      check_moe_stream(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_gemm_wgmma) {
      check_gemm_wgmma(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_attn_mma) {
      check_attention_decode_mma(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_attn) {
      check_attention_paths(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (only_gemv) {
      check_gemv_variants(r);
      only_moe = true, bf16_experts = true;  // nothing else below
    } else if (bf16_experts) {
      check_moe_bf16_layout_error(r);
      MoeBf16Set small = make_moe_bf16(r, 5, 64, 96);
      check_moe_bf16(r, small, 1, 2);
      check_moe_bf16(r, small, 3, 2);
      check_moe_bf16(r, small, 40, 2);
      MoeBf16Set square = make_moe_bf16(r, 4, 64, 32);  // H == 2I
      check_moe_bf16(r, square, 2, 3);
      check_moe_bf16(r, square, 33, 3);
      MoeBf16Set odd = make_moe_bf16(r, 6, 544, 320);  // 68 and 40 chunks a row: partial lane strides, tiles
      check_moe_bf16(r, odd, 2, 3);
      check_moe_bf16(r, odd, 1, 6);
      check_moe_bf16(r, odd, 50, 4);
      if (!quick) {
        MoeBf16Set real = make_moe_bf16(r, 8, 2880, 2880);  // 20b widths, 8 of its 32 experts (host memory)
        check_moe_bf16(r, real, 1, 4);
        check_moe_bf16(r, real, 4, 4);
        check_moe_bf16(r, real, 77, 4);
        check_moe_bf16(r, real, 512, 4);  // 256 rows an expert: 128-row tiles
      }
    }
    if (!only_moe && !bf16_experts) {
    // MXFP4 dequant: exact
    check_dequant(r, {3, 7, 96});
    if (!quick) check_dequant(r, {4, 5760, 2880});
    // embedding (+ device range error)
    check_embedding(r, rand_bf16(r, {1000, 72}), 5, "embedding");
    if (!quick) check_embedding(r, rand_bf16(r, {201088, 2880}), 64, "embedding");
    check_embedding_range();
    check_embedding(r, rand_q8_0(r, {1000, 96}), 5, "embedding_q8_0");
    if (!quick) check_embedding(r, rand_q8_0(r, {201088, 2880}), 64, "embedding_q8_0");
    check_rmsnorm(r, 5, 100);
    check_rmsnorm(r, quick ? 7 : 300, 2880);
    check_add(r, 3, 33);
    check_add(r, quick ? 7 : 300, 2880);
    check_rope(r, 5, 3, 16);
    check_rope(r, quick ? 9 : 77, 64, 64);
    // linear: GEMV (n <= 8, f32 exact-ish), GEMM (mma.sync bf16), naive (odd K)
    check_linear(r, 3, 40, 17, false, true, 1e-5, "gemv");
    check_linear(r, 33, 40, 17, false, true, 1e-4, "gemm");
    check_linear(r, 5, 30, 7, false, true, 1e-5, "naive");
    check_linear(r, 2, 64, 33, true, true, 1e-5, "gemv mxfp4");
    check_linear(r, 40, 64, 33, true, false, 1e-4, "gemm mxfp4");
    check_linear(r, 1, 2880, 5120, false, true, 1e-5, "gemv qkv");
    check_linear(r, 8, 2880, 5120, false, true, 1e-5, "gemv qkv");
    check_linear(r, quick ? 20 : 77, 2880, quick ? 640 : 5120, false, true, 1e-4, "gemm qkv");
    // Q8_0 weights: GEMV for 1..8 tokens (and 8 at a time), GEMM (chunks of dequantized rows) above
    check_linear_q8(r, 1, 64, 33, true, 1e-5, "gemv q8");
    check_linear_q8(r, 5, 96, 17, true, 1e-5, "gemv q8");
    check_linear_q8(r, 40, 96, 33, true, 1e-4, "gemm q8");
    check_linear_q8(r, 1, 2880, 5120, true, 1e-5, "gemv q8 qkv");
    check_linear_q8(r, quick ? 20 : 77, 2880, quick ? 640 : 5120, true, 1e-4, "gemm q8 qkv");
    if (!quick) {
      check_linear_q8(r, 4, 2880, 201088, false, 1e-5, "gemv q8 lm_head");
      check_linear_q8(r, 300, 2880, 201088, false, 1e-4, "gemm q8 lm_head (48 chunks)");
      check_linear(r, 1, 2880, 201088, false, false, 1e-5, "gemv lm_head");
      check_linear(r, 4, 2880, 201088, false, false, 1e-5, "gemv lm_head");
      check_linear(r, 512, 4096, 2880, false, true, 1e-4, "gemm o_proj");
      check_linear(r, 1, 2880, 5760, true, true, 1e-5, "gemv mxfp4 expert");
      check_linear(r, 300, 2880, 5760, true, true, 1e-4, "gemm mxfp4 expert");
    }
    // the batched step's logit rows and draws; then every attention path
    check_batch_draws(r, 24, quick ? 1024 : 201088);
    check_queued_draws(r, 24, quick ? 1024 : 201088);
    check_attention_paths(r);
    // router and moe
    check_router_paths(r);  // the router and add+norm+router, every launch form
    }
    if (!bf16_experts) {
      check_mxf8_selftest();
      MoeSet small = make_moe(r, 5, 64, 96);
      check_moe(r, small, 3, 2, 1e-5);
      check_moe(r, small, 40, 2, 1e-4);
      MoeSet odd = make_moe(r, 6, 544, 320);  // 17 and 10 MX blocks a row: partial cp.async stages
      check_moe(r, odd, 2, 3, 1e-5);
      check_moe(r, odd, 1, 6, 1e-5);           // k > 4: a down warp takes two experts
      // the decode layout (mma-relaid, Hopper's default): the decode cases equal "decode mma" above bit for
      // bit (same operands, same MMA order), so <= 1e-4; grouped <= 1e-4.
      if (!kHip) {
        const MoeSet small_r = relaid_copy(small), odd_r = relaid_copy(odd);
        check_moe(r, small_r, 3, 2, 1e-5, true);
        check_moe(r, small_r, 40, 2, 1e-4, true);
        check_moe(r, odd_r, 2, 3, 1e-5, true);
        check_moe(r, odd_r, 1, 6, 1e-5, true);
      }
    }
    if (!bf16_experts && !quick) {
      MoeSet real = make_moe(r, 32, 2880, 2880);
      check_moe(r, real, 1, 4, 1e-5);
      check_moe(r, real, 4, 4, 1e-5);
      check_moe(r, real, 77, 4, 1e-4);
      check_moe(r, real, 8, 4, 1e-4);     // a batched decode step: 1-2 tokens an expert
      check_moe(r, real, 64, 4, 1e-4);    // 8 an expert: groups of 4
      check_moe(r, real, 5, 4, 1e-4);
      check_moe(r, real, 512, 4, 1e-4);   // 64 rows an expert: 64-row tiles
      check_moe(r, real, 1024, 4, 1e-4);  // 128 an expert: 128-row tiles
      if (!kHip) {
        const MoeSet real_r = relaid_copy(real);
        check_moe(r, real_r, 1, 4, 1e-5, true);
        check_moe(r, real_r, 4, 4, 1e-5, true);
        check_moe(r, real_r, 512, 4, 1e-4, true);
      }
      check_moe_stream(r);  // the streaming MoE of a decode batch (Hopper's default from 17 to 128 streams of the 20b)
      check_gemm_splitk(r);  // split-K of the decode batch's dense GEMMs (Hopper)
    } else if (!bf16_experts) {
      MoeSet mid = make_moe(r, 8, 256, 256);
      check_moe(r, mid, 2, 4, 1e-5);
      check_moe(r, mid, 48, 2, 1e-4);
      check_moe(r, mid, 9, 4, 1e-4);  // groups of 1..4 pairs an expert
    }
    if (!only_moe && !bf16_experts) {
      check_sample(r, quick ? 1024 : 201088);
      check_logprob_top(r, quick ? 4096 : 201088);
      check_unranked_draws(r, quick ? 4096 : 201088);
      check_greedy_rows(r, quick ? 4096 : 201088);
      check_graph(r);
      // fused ops vs the CPU's default compositions
      check_add_rmsnorm(r, 3, 100);
      check_add_rmsnorm(r, 1, 2880);
      check_add_rmsnorm(r, quick ? 9 : 300, 2880);
      check_qkv(r, 1, 2880, 4096, 512, 1e-5, "one gemv");
      check_qkv(r, 5, 64, 40, 24, 1e-5, "one gemv");
      check_qkv(r, 8, 2880, 4096, 512, 1e-5, "one gemv");
      check_qkv(r, quick ? 20 : 77, 2880, quick ? 640 : 4096, quick ? 128 : 512, 1e-4, "one gemm, 3 parts");
      check_qkv(r, 40, 64, 200, 72, 1e-4, "one gemm, 3 parts, partial column tiles");
      check_add_rmsnorm_qkv(r, 1, 2880, 4096, 512, "one launch");  // gpt-oss decode
      check_add_rmsnorm_qkv(r, 1, 1000, 40, 24, "one launch, H/4 not a multiple of the block");
      check_add_rmsnorm_qkv(r, 1, 4096, 96, 32, "one launch, 4 float4s a thread");
      check_add_rmsnorm_qkv(r, 3, 2880, 256, 64, "the two ops");
      // the GEMM path of a decode batch: the norm writes the GEMM's bf16 halves (launch_add_rmsnorm_split)
      check_add_rmsnorm_qkv(r, 64, 2880, 4096, 512, "GEMM, halves from the norm", 1e-4);
      check_add_rmsnorm_qkv(r, 40, 2880, 4096, 512, "GEMM (mma.sync tile), halves from the norm", 1e-4);
      check_add_rmsnorm_qkv(r, 128, 1000, 256, 64, "GEMM, H/4 not a multiple of the block", 1e-4);
      check_rope_kv_store(r, 1, 64, 8, 64, quick ? 300 : 4096, kKvBF16);
      check_rope_kv_store(r, 1, 64, 8, 64, quick ? 300 : 4096, kKvF16);
      check_rope_kv_store(r, 1, 64, 8, 64, quick ? 300 : 4096, kKvF32);
      check_rope_kv_store(r, 1, 64, 8, 64, quick ? 300 : 4096, kKvF32KF16V);
      check_rope_kv_store(r, 5, 6, 3, 16, 40, kKvF32);
      check_rope_kv_store(r, quick ? 20 : 77, 64, 8, 64, quick ? 64 : 1024, kKvBF16);
      if (!quick) time_fused_step(r);
    }
  } catch (const std::exception& e) {
    std::printf("FAIL  exception: %s\n", e.what());
    ++failures;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("gpu_check: %d cases, %d failed, %.1f s, seed %llu\n", cases, failures, secs, (unsigned long long)seed);
  return failures ? 1 : 0;
}
