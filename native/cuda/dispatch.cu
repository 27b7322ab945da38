// CudaBackend: the GPU implementation of model/backend.h and the ONE dispatch point: every op is
// checked here (model/op_checks.h, shared with cpu/, plus the GPU kernels' own limits), asks the
// path choosers of policy.h with this device's GpuCaps (device.h), and calls the kernel family's
// launcher. Value errors (token ids, positions, expert ids) are flagged on the device. Memory comes
// from a caching pool (pool.h) on the backend's one stream; decode steps replay as graphs (graph.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "attention.cuh"
#include "gemm_tile.cuh"
#include "backend_cuda.h"
#include "graph.h"
#include "matmul.cuh"
#include "moe.cuh"
#include "mxfp4.cuh"
#include "norm_rope.cuh"
#include "pool.h"
#include "q8.cuh"
#include "logprobs.cuh"
#include "sample.cuh"
#include "model/op_checks.h"

namespace gptoss {

namespace cuda {

namespace {

// The cache types the kernels read and write (kv.cuh), default first (Backend::default_kv_type).
// f32k-f16v (K exact in f32, V in f16) is the default since its H200 run (2026-12-05, a43bf0e): the only
// 2- or 3-byte-per-element cache that keeps the deep checkpoints within 1e-2 of an f32 cache on CUDA
// (deep-a/b/c 4.1e-4 / 8.1e-4 / 9.3e-4, argmax 80/80; bf16 1.5e-1 / 1.9e-1 / 2.5e-1), at no decode cost
// (20b at context 4096 +0.9%, 8192 0.0% against bf16): the rule in scripts/gpu-kv-ab.sh. bf16, f16 and
// f32 stay available (loadModel's kvCache).
#define GPTOSS_CUDA_KV_TYPES kKvF32KF16V, kKvBF16, kKvF16, kKvF32

// The kernels' cache type of a (K, V) pair the checks accepted (one of GPTOSS_CUDA_KV_TYPES).
KvType kv_type(const Tensor& k_cache, const Tensor& v_cache) {
  if (k_cache.dtype == DType::F32) return v_cache.dtype == DType::F16 ? KvType::F32K_F16V : KvType::F32;
  return k_cache.dtype == DType::BF16 ? KvType::BF16 : KvType::F16;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index)
      : index_(index), caps_(device_caps(index)), graphs_(env_flag("GPTOSS_CUDA_GRAPHS", true)) {
    const std::string unusable = device_unusable_reason(caps_);
    if (!unusable.empty()) throw runtime_error(unusable);
    GPTOSS_CUDA_CHECK(cudaSetDevice(index_));
    GPTOSS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    pool_ = std::make_shared<DevicePool>(index_);
    err_block_ = pool_->alloc(sizeof(int) * 4);
    err_ = static_cast<int*>(err_block_.get());
    result_ = reinterpret_cast<int32_t*>(err_ + 1);
    GPTOSS_CUDA_CHECK(cudaMemsetAsync(err_, 0, sizeof(int) * 4, stream_));
    if (cudaHostAlloc(reinterpret_cast<void**>(&staging_), kStagingBytes, cudaHostAllocDefault) != cudaSuccess) {
      (void)cudaGetLastError();  // no pinned memory: small copies wait like large ones
      staging_ = nullptr;
    }
    counters_block_ = pool_->alloc(sizeof(int) * kCountersTotal);  // last-block counters (common.cuh)
    counters_ = static_cast<int*>(counters_block_.get());
    GPTOSS_CUDA_CHECK(cudaMemsetAsync(counters_, 0, sizeof(int) * kCountersTotal, stream_));
    sync_stream();
    fuse_ = env_flag("GPTOSS_CUDA_FUSE", true);
    pdl_ = use_pdl(caps_, knobs());
  }

  ~CudaBackend() override {
    (void)cudaSetDevice(index_);
    graphs_.clear();
    (void)cudaStreamSynchronize(stream_);
    err_block_.reset();
    counters_block_.reset();
    if (staging_) (void)cudaFreeHost(staging_);
    if (reads_) {
      for (cudaEvent_t e : read_events_) (void)cudaEventDestroy(e);
      (void)cudaFreeHost(reads_);
    }
    pool_->release_cached();
    (void)cudaStreamDestroy(stream_);
  }

  Device device() const override { return Device{kGpuKind, index_}; }
  std::string describe() const override {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %s (%s, %.0f GiB; graphs %s, fused ops %s, pdl %s)",
                  gpu_device_str(index_).c_str(), caps_.name.c_str(), caps_summary(caps_).c_str(),
                  double(caps_.total_mem) / double(1ull << 30), graphs_.enabled() ? "on" : "off", fuse_ ? "on" : "off",
                  pdl_ ? "on" : "off");
    return buf;
  }
  std::vector<KvCacheType> kv_types() const override { return {GPTOSS_CUDA_KV_TYPES}; }

  // ---- memory ----
  Tensor empty(DType dtype, const Shape& shape) override {
    set_device();
    Tensor t;
    t.dtype = dtype;
    t.shape = shape;
    t.device = device();
    for (int64_t d : shape)
      if (d < 0) throw range_error("empty: negative dimension in shape " + shape_str(shape));
    const size_t bytes = t.nbytes() + t.scale_bytes();
    t.storage = pool_->alloc(bytes);
    t.data = t.storage.get();
    if (dtype == DType::MXFP4) t.scales = static_cast<uint8_t*>(t.data) + t.nbytes();
    if (dtype == DType::Q8_0) t.scales = static_cast<uint8_t*>(t.data) + t.numel();  // q8.cuh: q, then d
    return t;
  }

  Tensor upload(const Tensor& host) override {
    if (host.device == device()) return host;
    if (host.device.kind != DeviceKind::CPU) throw type_error("upload: expected a cpu tensor, got " + host.describe());
    if (!host.data && host.numel() != 0) throw type_error("upload: tensor has no data (disposed?)");
    OpScope op(this);
    not_capturing("upload");
    Tensor t = empty(host.dtype, host.shape);
    if (host.dtype == DType::Q8_0 && host.nbytes()) {  // ggml's 34-byte blocks -> q8.cuh's device layout
      if (host.dim(-1) % kQ8BlockSize != 0) throw range_error("upload: q8_0 rows must hold whole 32-value blocks, got " + host.describe());
      std::vector<uint8_t> repacked(host.nbytes());
      q8_to_device_layout(static_cast<const uint8_t*>(host.data), host.numel() / kQ8BlockSize, repacked.data());
      GPTOSS_CUDA_CHECK(cudaMemcpyAsync(t.data, repacked.data(), repacked.size(), cudaMemcpyHostToDevice, stream_));
      sync_stream();
      return t;
    }
    if (host.nbytes())
      GPTOSS_CUDA_CHECK(cudaMemcpyAsync(t.data, host.data, host.nbytes(), cudaMemcpyHostToDevice, stream_));
    if (host.scale_bytes()) {
      if (!host.scales) throw type_error("upload: mxfp4 tensor has no scales: " + host.describe());
      GPTOSS_CUDA_CHECK(cudaMemcpyAsync(t.scales, host.scales, host.scale_bytes(), cudaMemcpyHostToDevice, stream_));
    }
    sync_stream();  // the host memory may go away after return
    return t;
  }

  // Small copies (a decode step's token and position) go through pinned staging memory and do not
  // wait: the caller's buffer is copied into the staging area at once, and the area is reused only
  // after the stream has been synchronized (sync_stream). Large ones copy and wait.
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override {
    checks::copy_from_host(dst, bytes, device());
    OpScope op(this);
    not_capturing("copy_from_host");
    if (!bytes) return;
    if (staging_ && bytes <= kStagingBytes / 4) {
      if (staging_used_ + bytes > kStagingBytes) sync_stream();
      uint8_t* slot = staging_ + staging_used_;
      std::memcpy(slot, src, bytes);
      staging_used_ += (bytes + 255) / 256 * 256;
      GPTOSS_CUDA_CHECK(cudaMemcpyAsync(dst.data, slot, bytes, cudaMemcpyHostToDevice, stream_));
      return;
    }
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, stream_));
    sync_stream();
  }

  void copy_to_host(const Tensor& src, void* dst, size_t bytes) override {
    checks::copy_to_host(src, bytes, device());
    OpScope op(this);
    not_capturing("copy_to_host");
    if (bytes) GPTOSS_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_));
    sync_stream();
    check_device_errors();
  }

  void synchronize() override {
    OpScope op(this);
    sync_stream();
    check_device_errors();
  }

  // ---- ops ----
  void embedding(const Tensor& tokens, const Tensor& table, Tensor& out) override {
    checks::embedding(tokens, table, out, device());
    OpScope op(this);
    if (table.dtype == DType::Q8_0)
      return launch_embedding_q8(tokens.ptr<int32_t>(), int(tokens.dim(0)), static_cast<const int8_t*>(table.data),
                                 static_cast<const uint16_t*>(table.scales), int(table.dim(0)), int(table.dim(1)),
                                 out.ptr<float>(), err_, stream_);
    launch_embedding(tokens.ptr<int32_t>(), int(tokens.dim(0)), table.data, table.dtype == DType::BF16,
                     int(table.dim(0)), int(table.dim(1)), out.ptr<float>(), err_, stream_);
  }

  void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    checks::rmsnorm(x, weight, out, device());
    const int64_t H = x.dim(-1);
    OpScope op(this);
    launch_rmsnorm(x.ptr<float>(), weight.data, weight.dtype == DType::BF16, int(H ? x.numel() / H : 0), int(H), eps,
                   out.ptr<float>(), stream_);
  }

  void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) override {
    checks::linear(x, weight, bias, out, device());
    OpScope op(this);
    if (weight.dtype == DType::Q8_0) {
      const Q8LinearArgs a = q8_linear_args(x, weight, bias, out);
      if (a.n == 0 || a.N == 0) return;
      if (choose_linear_q8(caps_, a.n) == LinearPath::Gemv) return launch_linear_q8_gemv(a, stream_);
      std::shared_ptr<void> ws = pool_->alloc(linear_q8_gemm_workspace_bytes(a));
      return launch_linear_q8_gemm(a, ws.get(), stream_);
    }
    const LinearArgs a = linear_args(x, weight, bias, out);
    if (a.n == 0 || a.N == 0) return;
    switch (choose_linear(caps_, a.n, a.K, a.w_scales != nullptr)) {  // the GEMV up to gemv_max_tokens; above, the GEMM tile
      case LinearPath::Gemv: return launch_linear_gemv(a, stream_);
      case LinearPath::Gemm: {
        std::shared_ptr<void> ws = pool_->alloc(linear_gemm_workspace_bytes(a));
        return launch_linear_gemm(a, ws.get(), stream_);
      }
      case LinearPath::Naive: return launch_linear_naive(a, stream_);
    }
  }

  void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) override {
    checks::rope(x, positions, inv_freq, device());
    OpScope op(this);
    launch_rope(x.ptr<float>(), positions.ptr<int32_t>(), inv_freq.ptr<float>(), int(x.dim(0)), int(x.dim(1)),
                int(x.dim(2)), scale, stream_);
  }

  void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                Tensor& v_cache) override {
    // The kernels read and write every cache type of kv_types(); the model's kvCache picks one.
    checks::kv_store(k, v, positions, k_cache, v_cache, device(), {GPTOSS_CUDA_KV_TYPES});
    OpScope op(this);
    launch_kv_store(k.ptr<float>(), v.ptr<float>(), positions.ptr<int32_t>(), int(k.dim(0)), int(k.dim(1)),
                    int(k.dim(2)), k_cache.data, v_cache.data, kv_type(k_cache, v_cache), int(k_cache.dim(0)), err_, stream_);
  }

  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                 const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) override {
    checks::attention(q, k_cache, v_cache, sinks, positions, sliding_window, out, device(), {GPTOSS_CUDA_KV_TYPES});
    if (q.dim(2) % 8 != 0) throw range_error("attention: head dim must be a multiple of 8 on cuda, got " + q.describe());
    OpScope op(this);
    const AttentionArgs a = attention_args(q, k_cache, v_cache, sinks, positions, sliding_window, softmax_scale, out);
    // n <= 4 and D = 64: split-KV decode; D = 64: flash (mma.sync); other head dims: plain f32.
    const AttentionPath path = choose_attention(caps_, a.n, a.Hq, a.Hkv, a.D);
    const size_t ws_bytes = attention_workspace_bytes(path, a);
    std::shared_ptr<void> ws = ws_bytes ? pool_->alloc(ws_bytes) : nullptr;
    launch_attention_path(path, a, ws.get(), stream_);
  }

  void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
              Tensor& expert_weight) override {
    checks::router(x, weight, bias, k, expert_idx, expert_weight, device(), kRouterMaxK);
    OpScope op(this);
    const RouterArgs a = router_args(x, weight, bias, k, expert_idx, expert_weight);
    const size_t ws_bytes = router_workspace_bytes(a);
    std::shared_ptr<void> ws = ws_bytes ? pool_->alloc(ws_bytes) : nullptr;
    launch_router(a, ws.get(), counters_, stream_);
  }

  void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
           const SwigluParams& swiglu, Tensor& out) override {
    const MoeArgs a = moe_args(x, expert_idx, expert_weight, w, swiglu, out);
    OpScope op(this);
    if (a.n == 0) return;
    if (a.bf16) {  // bf16 experts: SIMT GEMVs for few pairs, the bf16 tile's grouped GEMM above (policy.h)
      const MoeBf16Path path = choose_moe_bf16(caps_, knobs(), a.n, a.k);
      std::shared_ptr<void> ws = pool_->alloc(moe_workspace_bytes(a, path == MoeBf16Path::Gemv));
      if (path == MoeBf16Path::Gemv) return launch_moe_bf16_gemv(a, ws.get(), stream_);
      return launch_moe_grouped(a, ws.get(), stream_);
    }
    // Few (token, expert) pairs: fused matvecs reading only the routed experts; else grouped GEMM.
    const bool decode = moe_uses_decode(a.n, a.k);
    if (!decode && (a.H / kGemmBK > kGemmMaxKBlocks || a.I / kGemmBK > kGemmMaxKBlocks))
      throw range_error("moe: hidden and intermediate sizes of at most " + std::to_string(kGemmMaxKBlocks * kGemmBK) +
                        " on cuda for more than one token, got " + std::to_string(a.H) + " and " + std::to_string(a.I));
    const GpuKnobs kn = knobs();
    const MoeBatchPath batch = decode ? (moe_decode_uses_stream(caps_, kn, a.E, a.H, a.I) ? MoeBatchPath::Stream
                                                                                                         : MoeBatchPath::Gemm)
                                      : choose_moe_batch(caps_, kn, a.n, a.k, a.E, a.H, a.I, a.decode_layout);
    if (batch == MoeBatchPath::GroupedMma) {
      std::shared_ptr<void> ws = pool_->alloc(moe_group_mma_workspace_bytes(a));
      return launch_moe_group_mma(a, ws.get(), stream_);
    }
    if (batch == MoeBatchPath::Stream) {  // moe_stream.cu: the rows a tile, once for its workspace and its launch
      const int tokens = moe_stream_tokens(caps_, kn, int64_t(a.n) * a.k, a.E, a.H, a.I);
      std::shared_ptr<void> ws = pool_->alloc(moe_stream_workspace_bytes(a, tokens));
      return launch_moe_stream(a, tokens, ws.get(), stream_);
    }
    std::shared_ptr<void> ws = pool_->alloc(moe_workspace_bytes(a, decode));
    if (!decode) return launch_moe_grouped(a, ws.get(), stream_);
    const MoeDecodeKind kind = choose_moe_decode(caps_, knobs(), a.n, a.H, a.I, a.decode_layout);
    switch (kind) {
      case MoeDecodeKind::Mma:
      case MoeDecodeKind::MmaRelaid:
      case MoeDecodeKind::MmaPrmt:
      case MoeDecodeKind::MmaFp8:
      case MoeDecodeKind::MmaMxf8: return launch_moe_decode_mma(a, kind, ws.get(), stream_);
      case MoeDecodeKind::Simt: return launch_moe_decode(a, ws.get(), stream_);
      case MoeDecodeKind::Mfma:
#if defined(GPTOSS_HIP)
        return launch_moe_decode_mfma(a, ws.get(), stream_);
#else
        throw runtime_error("moe: the MFMA decode kernels are AMD-only (native/hip/moe_decode_mfma.hip), not in a CUDA build");
#endif
    }
  }

  // The decode layout (mxfp4_layout.h) for the mma-relaid kernels, where moe_decode_layout() holds:
  // gate_up and down re-laid in place on the device (one pass over the blocks, the scales through a
  // scratch buffer), timed for the load report.
  std::string prepare_experts(MoeWeights& w) override {
    if (w.decode_layout || w.split() || w.gate_up.dtype != DType::MXFP4 || w.down.dtype != DType::MXFP4) return "";
    const int H = int(w.down.dim(1)), I = int(w.gate_up.dim(1) / 2), E = int(w.gate_up.dim(0));
    if (!moe_decode_layout(caps_, knobs(), H, I)) return "";
    OpScope op(this);
    not_capturing("prepare_experts");
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<void> scratch = pool_->alloc(std::max(w.gate_up.scale_bytes(), w.down.scale_bytes()));
    launch_mxfp4_to_decode_layout(static_cast<uint8_t*>(w.gate_up.data), static_cast<uint8_t*>(w.gate_up.scales), E, 2 * I,
                                  H / 32, static_cast<uint8_t*>(scratch.get()), stream_);
    launch_mxfp4_to_decode_layout(static_cast<uint8_t*>(w.down.data), static_cast<uint8_t*>(w.down.scales), E, H, I / 32,
                                  static_cast<uint8_t*>(scratch.get()), stream_);
    sync_stream();
    check_device_errors();
    w.decode_layout = true;
    char buf[160];
    std::snprintf(buf, sizeof buf, "experts [%d, %d, %d] + [%d, %d, %d]: mxfp4 -> decode layout (mma-relaid), %.2f ms", E,
                  2 * I, H, E, H, I, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return buf;
  }

  void add(Tensor& acc, const Tensor& x) override {
    checks::add(acc, x, device());
    OpScope op(this);
    launch_add(acc.ptr<float>(), x.ptr<float>(), acc.numel(), stream_);
  }

  // ---- fused ops (model/backend.h): one launch each where the kernel takes the shape ----
  // GPTOSS_CUDA_FUSE=0 runs the default compositions instead (same results; for A/B timing).
  void add_rmsnorm(Tensor& x, const Tensor& residual, const Tensor& weight, float eps, Tensor& normed) override {
    if (!fuse_) return Backend::add_rmsnorm(x, residual, weight, eps, normed);
    checks::add_rmsnorm(x, residual, weight, normed, device());
    const int64_t H = x.dim(-1);
    OpScope op(this);
    launch_add_rmsnorm(x.ptr<float>(), residual.ptr<float>(), weight.data, weight.dtype == DType::BF16,
                       int(H ? x.numel() / H : 0), int(H), eps, normed.ptr<float>(), stream_);
  }

  void add_rmsnorm_router(Tensor& x, const Tensor& residual, const Tensor& norm_weight, float eps, Tensor& normed,
                          const Tensor& router_weight, const Tensor& router_bias, int k, Tensor& expert_idx,
                          Tensor& expert_weight) override {
    checks::add_rmsnorm(x, residual, norm_weight, normed, device());
    checks::router(normed, router_weight, router_bias, k, expert_idx, expert_weight, device(), kRouterMaxK);
    OpScope op(this);
    const RouterArgs a = router_args(normed, router_weight, router_bias, k, expert_idx, expert_weight);
    const bool w_bf16 = norm_weight.dtype == DType::BF16;
    if (!fuse_ || x.dim(-1) != a.H ||
        !add_rmsnorm_router_fusable(a, x.data, residual.data, normed.data, norm_weight.data, w_bf16))
      return Backend::add_rmsnorm_router(x, residual, norm_weight, eps, normed, router_weight, router_bias, k,
                                         expert_idx, expert_weight);
    std::shared_ptr<void> ws = pool_->alloc(router_workspace_bytes(a));
    launch_add_rmsnorm_router(a, x.ptr<float>(), residual.ptr<float>(), norm_weight.data, w_bf16, eps,
                              normed.ptr<float>(), ws.get(), counters_, stream_);
  }

  void add_rmsnorm_qkv(Tensor& x, const Tensor& residual, const Tensor& norm_weight, float eps, Tensor& normed,
                       const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
                       const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) override {
    if (wq.dtype == DType::Q8_0 || wk.dtype == DType::Q8_0 || wv.dtype == DType::Q8_0)  // q8.cu's GEMV a part
      return Backend::add_rmsnorm_qkv(x, residual, norm_weight, eps, normed, wq, bq, wk, bk, wv, bv, q, k, v);
    checks::add_rmsnorm(x, residual, norm_weight, normed, device());
    checks::qkv(normed, wq, bq, wk, bk, wv, bv, q, k, v, device());
    OpScope op(this);
    const LinearArgs parts[3] = {linear_args(normed, wq, &bq, q), linear_args(normed, wk, &bk, k),
                                 linear_args(normed, wv, &bv, v)};
    const bool w_bf16 = norm_weight.dtype == DType::BF16;
    if (fuse_ && parts[0].n > 0 && linear_gemm_parts_ok(parts, 3)) {
      // the GEMM path (a decode batch's q/k/v): the norm writes the GEMM's A halves too (no split launch)
      std::shared_ptr<void> ws = pool_->alloc(linear_gemm_workspace_bytes(parts[0]));
      const LinearHalves h = linear_gemm_halves(parts[0], ws.get());
      launch_add_rmsnorm_split(x.ptr<float>(), residual.ptr<float>(), norm_weight.data, w_bf16, parts[0].n, parts[0].K, eps,
                               normed.ptr<float>(), h.hi, h.lo, stream_);
      return launch_linear_gemm_parts_halves(parts, 3, h, stream_);
    }
    if (!fuse_ || !add_rmsnorm_gemv_fusable(parts, 3, x.ptr<float>(), residual.ptr<float>(), normed.ptr<float>(),
                                            norm_weight.data, w_bf16))
      return Backend::add_rmsnorm_qkv(x, residual, norm_weight, eps, normed, wq, bq, wk, bk, wv, bv, q, k, v);
    launch_add_rmsnorm_gemv(parts, 3, x.ptr<float>(), residual.ptr<float>(), norm_weight.data, w_bf16, eps,
                            normed.ptr<float>(), counters_, stream_);
  }

  void qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
           const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) override {
    if (fuse_ && wq.dtype == DType::Q8_0 && wk.dtype == DType::Q8_0 && wv.dtype == DType::Q8_0) {
      // Q8_0 q, k, v as one GEMV launch where choose_gemv puts Q8_0 on gemv_xs_kernel; else one by one
      checks::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v, device());
      OpScope op(this);
      const Q8LinearArgs parts[3] = {q8_linear_args(xn, wq, &bq, q), q8_linear_args(xn, wk, &bk, k),
                                     q8_linear_args(xn, wv, &bv, v)};
      if (parts[0].n > 0 && choose_linear_q8(caps_, parts[0].n) == LinearPath::Gemv &&
          launch_linear_q8_gemv_parts(parts, 3, stream_))
        return;
    }
    if (!fuse_ || wq.dtype == DType::Q8_0 || wk.dtype == DType::Q8_0 || wv.dtype == DType::Q8_0)
      return Backend::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v);
    checks::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v, device());
    OpScope op(this);
    const LinearArgs parts[3] = {linear_args(xn, wq, &bq, q), linear_args(xn, wk, &bk, k), linear_args(xn, wv, &bv, v)};
    // One GEMV over the three row ranges when each would take the GEMV path with one weight format
    // (decode); prefill: one GEMM launch over the three column ranges (k and v alone are 4 column
    // tiles each, too few blocks to fill the GPU), A split once.
    bool one_gemv = parts[0].n > 0;
    for (const LinearArgs& a : parts)
      one_gemv = one_gemv && a.N > 0 && choose_linear(caps_, a.n, a.K, a.w_scales != nullptr) == LinearPath::Gemv &&
                 (a.w_scales != nullptr) == (parts[0].w_scales != nullptr);
    if (one_gemv) return launch_linear_gemv_parts(parts, 3, stream_);
    if (!linear_gemm_parts_ok(parts, 3)) return Backend::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v);
    std::shared_ptr<void> ws = pool_->alloc(linear_gemm_workspace_bytes(parts[0]));
    launch_linear_gemm_parts(parts, 3, ws.get(), stream_);
  }

  void rope_kv_store(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& inv_freq,
                     float scale, Tensor& k_cache, Tensor& v_cache) override {
    if (!fuse_) return Backend::rope_kv_store(q, k, v, positions, inv_freq, scale, k_cache, v_cache);
    checks::rope_kv_store(q, k, v, positions, inv_freq, k_cache, v_cache, device(), {GPTOSS_CUDA_KV_TYPES});
    OpScope op(this);
    launch_rope_kv_store(q.ptr<float>(), k.ptr<float>(), v.ptr<float>(), positions.ptr<int32_t>(), nullptr,
                         inv_freq.ptr<float>(), int(q.dim(0)), int(q.dim(1)), int(k.dim(1)), int(k.dim(2)), scale,
                         k_cache.data, v_cache.data, kv_type(k_cache, v_cache), int(k_cache.dim(0)), err_, stream_);
  }

  // ---- paged KV cache (a batch's pool of blocks, model/kv_cache.h) ----
  bool paged_kv() const override { return true; }

  void rope_kv_store_slots(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& slots,
                           const Tensor& inv_freq, float scale, Tensor& k_cache, Tensor& v_cache) override {
    checks::rope_kv_store(q, k, v, positions, inv_freq, k_cache, v_cache, device(), {GPTOSS_CUDA_KV_TYPES});
    checks::kv_store(k, v, slots, k_cache, v_cache, device(), {GPTOSS_CUDA_KV_TYPES});
    OpScope op(this);
    launch_rope_kv_store(q.ptr<float>(), k.ptr<float>(), v.ptr<float>(), positions.ptr<int32_t>(), slots.ptr<int32_t>(),
                         inv_freq.ptr<float>(), int(q.dim(0)), int(q.dim(1)), int(k.dim(1)), int(k.dim(2)), scale,
                         k_cache.data, v_cache.data, kv_type(k_cache, v_cache), int(k_cache.dim(0)), err_, stream_);
  }

  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                       const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                       int sliding_window, float softmax_scale, Tensor& out) override {
    checks::paged_attention(q, k_cache, v_cache, sinks, positions, seq_of_token, block_tables, block_size,
                            sliding_window, out, device(), {GPTOSS_CUDA_KV_TYPES});
    OpScope op(this);
    AttentionArgs a = attention_args(q, k_cache, v_cache, sinks, positions, sliding_window, softmax_scale, out);
    const int seqs = int(block_tables.dim(0));
    a.seq_of_token = seq_of_token.ptr<int32_t>();
    a.block_tables = block_tables.ptr<int32_t>();
    a.table_width = int(block_tables.dim(1));
    a.block_size = block_size;
    a.ctx = a.table_width * block_size;  // positions are logical: the most a table can map
    if (a.n == 0 || seqs == 0) return;
    // The split-KV decode kernel for the tokens alone in their sequence and flash for prompt chunks,
    // where their shapes hold (head dim 64, at most 16 query heads a kv head, mma.sync, (token, kv
    // head) counters); otherwise the plain kernel, which takes any step.
    const bool fast = a.D == kDecodeD && a.D == kFlashD && flash_path(caps_) != AttentionPath::Naive && a.Hq / a.Hkv <= kDecodeMaxG &&
                      int64_t(std::min(a.n, seqs)) * a.Hkv <= kDecodeMaxPairs;
    if (!fast) return launch_attention_path(AttentionPath::Naive, a, nullptr, stream_);
    const size_t ws_bytes = attention_paged_workspace_bytes(a, seqs, caps_.sm_count);
    std::shared_ptr<void> ws = ws_bytes ? pool_->alloc(ws_bytes) : nullptr;
    launch_attention_paged(a, seqs, caps_.sm_count, ws.get(), stream_);
  }

  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    checks::gather_rows(x, rows, out, device());
    OpScope op(this);
    launch_gather_rows(x.ptr<float>(), int(x.dim(0)), int(x.dim(1)), rows.ptr<int32_t>(), int(rows.dim(0)),
                       out.ptr<float>(), err_, stream_);
  }

  // Greedy rows in one launch (a block a row); sampled rows one after another on the stream; one copy back.
  std::vector<int32_t> sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                   const std::vector<SampleParams>& params, const std::vector<float>& uniforms) override {
    if (params.size() != rows.size() || uniforms.size() != rows.size())
      throw range_error("sampleRows: rows, params and uniforms must have one entry per draw");
    const int64_t count = int64_t(rows.size());
    if (count == 0) return {};
    if (logits.dtype != DType::F32 || logits.ndim() != 2 || logits.device != device())
      throw type_error("sampleRows: logits must be f32 [rows, vocab] on " + device().str() + ", got " + logits.describe());
    for (int64_t i = 0; i < count; ++i) {
      if (rows[size_t(i)] < 0 || rows[size_t(i)] >= logits.dim(0))
        throw range_error("sampleRows: rows[" + std::to_string(i) + "] = " + std::to_string(rows[size_t(i)]) +
                          " is outside the logits' " + std::to_string(logits.dim(0)) + " rows");
      checks::sample(logits.rows(rows[size_t(i)], 1), params[size_t(i)], uniforms[size_t(i)], device());
    }
    OpScope op(this);
    not_capturing("sample_rows");
    // [0, count): the ids in draw order; [count, 2 count): the greedy rows' logit rows, then their draws
    std::vector<int32_t> greedy_rows, greedy_at;
    for (int64_t i = 0; i < count; ++i)
      if (params[size_t(i)].temperature == 0.f) {
        greedy_rows.push_back(rows[size_t(i)]);
        greedy_at.push_back(int32_t(i));
      }
    const int64_t g = int64_t(greedy_rows.size());
    Tensor ids = empty(DType::I32, {count + 2 * g});
    int32_t* ids_p = ids.ptr<int32_t>();
    launch_draws(logits, rows, params, uniforms, greedy_rows, ids);
    std::vector<int32_t> host(size_t(count + 2 * g));
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(host.data(), ids_p, host.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    sync_stream();
    check_device_errors();
    std::vector<int32_t> out(host.begin(), host.begin() + count);
    for (int64_t j = 0; j < g; ++j) out[size_t(greedy_at[size_t(j)])] = host[size_t(count + g + j)];
    return out;
  }

  // With GPTOSS_CUDA_LOGPROBS=device, a block a row (logprobs.cu); only the log-sum-exp and the top entries come
  // back. Otherwise (the default until the kernel has run on a GPU) the rows are read on the host.
  std::vector<RowTop> logprob_top(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<int>& tops) override {
    if (!knobs().logprobs_device) return Backend::logprob_top(logits, rows, tops);
    checks::logprob_top(logits, rows, tops, device());
    const int count = int(rows.size());
    if (count == 0) return {};
    OpScope op(this);
    not_capturing("logprob_top");
    const int kmax = std::max(1, *std::max_element(tops.begin(), tops.end()));
    // [rows | tops] in, [lse | ids | logprobs] out, each in one buffer
    std::vector<int32_t> in(rows);
    in.insert(in.end(), tops.begin(), tops.end());
    Tensor in_t = empty(DType::I32, {2 * int64_t(count)});
    copy_from_host(in_t, in.data(), in.size() * sizeof(int32_t));
    const int64_t words = int64_t(count) * (1 + 2 * kmax);
    Tensor out_t = empty(DType::F32, {words});
    float* lse = out_t.ptr<float>();
    int32_t* ids = reinterpret_cast<int32_t*>(lse + count);
    float* lps = lse + count + int64_t(count) * kmax;
    launch_logprob_top(logits.ptr<float>(), int(logits.dim(1)), in_t.ptr<int32_t>(), in_t.ptr<int32_t>() + count, count, kmax, lse,
                       ids, lps, stream_);
    std::vector<float> host(static_cast<size_t>(words));
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(host.data(), lse, host.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    sync_stream();
    check_device_errors();
    std::vector<RowTop> out(static_cast<size_t>(count));
    const int32_t* host_ids = reinterpret_cast<const int32_t*>(host.data() + count);
    const float* host_lps = host.data() + count + int64_t(count) * kmax;
    for (int j = 0; j < count; ++j) {
      RowTop& t = out[size_t(j)];
      t.lse = host[size_t(j)];
      t.ids.assign(host_ids + int64_t(j) * kmax, host_ids + int64_t(j) * kmax + tops[size_t(j)]);
      t.logprobs.assign(host_lps + int64_t(j) * kmax, host_lps + int64_t(j) * kmax + tops[size_t(j)]);
    }
    return out;
  }

  // Batch's pipelined decode: sample_rows' launches (the same draws), then each id goes to
  // tokens[rows[j]] (the next step's input) and to a pinned slot whose copy read_rows() waits for; no
  // host sync here. More than kRowReadMax draws, or no pinned memory: sample_rows now (the default).
  RowsTicket queue_sample_rows(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<SampleParams>& params,
                               const std::vector<float>& uniforms, Tensor& tokens) override {
    if (params.size() != rows.size() || uniforms.size() != rows.size())
      throw range_error("queueSampleRows: rows, params and uniforms must have one entry per draw");
    if (tokens.dtype != DType::I32 || tokens.ndim() != 1 || tokens.device != device())
      throw type_error("queueSampleRows: tokens must be i32 [n] on " + device().str() + ", got " + tokens.describe());
    const int64_t count = int64_t(rows.size());
    for (int64_t j = 0; j < count; ++j)
      if (rows[size_t(j)] < 0 || rows[size_t(j)] >= tokens.dim(0) || rows[size_t(j)] >= logits.dim(0))
        throw range_error("queueSampleRows: rows[" + std::to_string(j) + "] = " + std::to_string(rows[size_t(j)]) +
                          " is outside the tokens' " + std::to_string(tokens.dim(0)) + " or the logits' " +
                          std::to_string(logits.dim(0)) + " rows");
    if (count == 0) return RowsTicket{0, true, {}};
    if (logits.dtype != DType::F32 || logits.ndim() != 2 || logits.device != device())
      throw type_error("queueSampleRows: logits must be f32 [rows, vocab] on " + device().str() + ", got " + logits.describe());
    for (int64_t j = 0; j < count; ++j) checks::sample(logits.rows(rows[size_t(j)], 1), params[size_t(j)], uniforms[size_t(j)], device());
    OpScope op(this);
    not_capturing("queue_sample_rows");
    if (count > kRowReadMax || !row_reads_ready()) return Backend::queue_sample_rows(logits, rows, params, uniforms, tokens);
    // ids: [0, count) the draws in draw order, [count, count + 2g) the greedy rows' logit rows then
    // their draws (as sample_rows), [count + 2g, 2 count + 2g) the draws as read back
    std::vector<int32_t> greedy_rows, src(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) src[size_t(i)] = int32_t(i);
    for (int64_t i = 0; i < count; ++i)
      if (params[size_t(i)].temperature == 0.f) greedy_rows.push_back(rows[size_t(i)]);
    const int64_t g = int64_t(greedy_rows.size());
    for (int64_t i = 0, jj = 0; i < count; ++i)
      if (params[size_t(i)].temperature == 0.f) src[size_t(i)] = int32_t(count + g + jj++);
    Tensor ids = empty(DType::I32, {2 * count + 2 * g});
    int32_t* ids_p = ids.ptr<int32_t>();
    launch_draws(logits, rows, params, uniforms, greedy_rows, ids);
    // src and rows side by side, then the ids to tokens and to the read-back area
    std::vector<int32_t> maps(src);
    maps.insert(maps.end(), rows.begin(), rows.end());
    Tensor maps_t = empty(DType::I32, {2 * count});
    copy_from_host(maps_t, maps.data(), maps.size() * sizeof(int32_t));
    int32_t* back = ids_p + count + 2 * g;
    launch_finish_rows(ids_p, maps_t.ptr<int32_t>(), maps_t.ptr<int32_t>() + count, int(count), tokens.ptr<int32_t>(), back,
                       stream_);
    const uint64_t ticket = next_row_read_++;
    const int slot = int(ticket % kRowReads);
    // a slot is reused kRowReads tickets later: its earlier copy has been waited for (read once, in order)
    GPTOSS_CUDA_CHECK(cudaEventSynchronize(row_events_[slot]));
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(row_reads_ + int64_t(slot) * kRowReadMax, back, size_t(count) * sizeof(int32_t),
                                      cudaMemcpyDeviceToHost, stream_));
    GPTOSS_CUDA_CHECK(cudaEventRecord(row_events_[slot], stream_));
    RowsTicket t;
    t.ticket = ticket;
    t.ready = false;
    t.ids.assign(size_t(count), 0);  // the count; filled by read_rows
    return t;
  }

  std::vector<int32_t> read_rows(RowsTicket& t) override {
    if (t.ready) return Backend::read_rows(t);
    OpScope op(this);
    const int slot = int(t.ticket % kRowReads);
    GPTOSS_CUDA_CHECK(cudaEventSynchronize(row_events_[slot]));
    check_device_errors();
    std::vector<int32_t> out(t.ids.size());
    std::memcpy(out.data(), row_reads_ + int64_t(slot) * kRowReadMax, out.size() * sizeof(int32_t));
    t.ready = true;
    t.ids.clear();
    return out;
  }

  void mxfp4_dequantize(const Tensor& packed, Tensor& out) override {
    checks::mxfp4_dequantize(packed, out, device());
    OpScope op(this);
    launch_mxfp4_dequantize(static_cast<const uint8_t*>(packed.data), static_cast<const uint8_t*>(packed.scales),
                            packed.numel() / 32, out.data, out.dtype == DType::BF16, stream_);
  }

  int32_t sample(const Tensor& logits, const SampleParams& params, float uniform) override {
    checks::sample(logits, params, uniform, device());
    OpScope op(this);
    not_capturing("sample");
    const int vocab = int(logits.dim(-1));
    std::shared_ptr<void> ws = pool_->alloc(sample_workspace_bytes(vocab, params));
    launch_sample(logits.ptr<float>(), vocab, params, uniform, ws.get(), counters_, result_, stream_);
    int32_t token = 0;
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(&token, result_, sizeof token, cudaMemcpyDeviceToHost, stream_));
    sync_stream();
    check_device_errors();
    return token;
  }

  void sample_into(const Tensor& logits, const SampleParams& params, float uniform, Tensor& token) override {
    checks::sample(logits, params, uniform, device());
    checks::token_slot(token, device(), "sampleInto: token");
    OpScope op(this);
    not_capturing("sample_into");
    const int vocab = int(logits.dim(-1));
    std::shared_ptr<void> ws = pool_->alloc(sample_workspace_bytes(vocab, params));
    launch_sample(logits.ptr<float>(), vocab, params, uniform, ws.get(), counters_, token.ptr<int32_t>(), stream_);
  }

  uint64_t queue_token_read(const Tensor& token) override {
    checks::token_slot(token, device(), "queueTokenRead: token");
    OpScope op(this);
    not_capturing("queue_token_read");
    if (!reads_) {
      if (cudaHostAlloc(reinterpret_cast<void**>(&reads_), sizeof(int32_t) * kReads, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        reads_ = nullptr;
        return Backend::queue_token_read(token);  // no pinned memory: read now
      }
      for (cudaEvent_t& e : read_events_) GPTOSS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    }
    const uint64_t ticket = next_read_++;
    const int slot = int(ticket % kReads);
    GPTOSS_CUDA_CHECK(cudaMemcpyAsync(reads_ + slot, token.data, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    GPTOSS_CUDA_CHECK(cudaEventRecord(read_events_[slot], stream_));
    return ticket | kTicketQueued;
  }

  int32_t read_token(uint64_t ticket) override {
    if (!(ticket & kTicketQueued)) return Backend::read_token(ticket);
    OpScope op(this);
    const int slot = int((ticket & ~kTicketQueued) % kReads);
    GPTOSS_CUDA_CHECK(cudaEventSynchronize(read_events_[slot]));
    check_device_errors();
    return reads_[slot];
  }

  // ---- decode-step graphs ----
  // First call for (owner, shape_key): capture `step` (nothing runs while capturing), instantiate,
  // launch. Later calls: launch the graph; `step` is NOT called again, so everything it touches must
  // be persistent device tensors whose contents (tokens, positions) change between replays.
  // If capture fails (a host sync or copy inside the step) the key is marked and runs eagerly.
  void run_step(uint64_t shape_key, void* owner, const std::function<void()>& step) override {
    set_device();
    graphs_.run(shape_key, owner, stream_, *pool_, op_mu_, capturing_, step);
  }

  void forget_steps(void* owner) override {
    set_device();
    graphs_.forget(owner);
  }

  cudaStream_t stream() const { return stream_; }
  static constexpr int kRouterMaxK = 32;  // router_kernel keeps at most 32 selected experts (moe.cu)

  // ---- argument packing (after the checks above) ----
  LinearArgs linear_args(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) const {
    LinearArgs a;
    a.x = x.ptr<float>();
    a.n = int(x.dim(0));
    a.K = int(x.dim(1));
    a.N = int(weight.dim(0));
    a.w = weight.data;
    a.w_scales = weight.dtype == DType::MXFP4 ? static_cast<const uint8_t*>(weight.scales) : nullptr;
    a.bias = bias ? bias->data : nullptr;
    a.bias_kind = bias ? (bias->dtype == DType::BF16 ? kBiasBF16 : kBiasF32) : kBiasNone;
    a.out = out.ptr<float>();
    return a;
  }
  Q8LinearArgs q8_linear_args(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) const {
    Q8LinearArgs a;
    a.x = x.ptr<float>();
    a.n = int(x.dim(0));
    a.K = int(x.dim(1));
    a.N = int(weight.dim(0));
    a.q = static_cast<const int8_t*>(weight.data);
    a.d = static_cast<const uint16_t*>(weight.scales);
    a.bias = bias ? bias->data : nullptr;
    a.bias_kind = bias ? (bias->dtype == DType::BF16 ? kBiasBF16 : kBiasF32) : kBiasNone;
    a.out = out.ptr<float>();
    return a;
  }
  AttentionArgs attention_args(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                               const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) const {
    AttentionArgs a;
    a.q = q.ptr<float>();
    a.n = int(q.dim(0));
    a.Hq = int(q.dim(1));
    a.D = int(q.dim(2));
    a.Hkv = int(k_cache.dim(1));
    a.ctx = int(k_cache.dim(0));
    a.k_cache = k_cache.data;
    a.v_cache = v_cache.data;
    a.cache = kv_type(k_cache, v_cache);
    a.sinks = sinks.data;
    a.sinks_bf16 = sinks.dtype == DType::BF16;
    a.positions = positions.ptr<int32_t>();
    a.sliding_window = sliding_window;
    a.softmax_scale = softmax_scale;
    a.out = out.ptr<float>();
    a.err = err_;
    a.counters = counters_;
    return a;
  }
  RouterArgs router_args(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
                         Tensor& expert_weight) const {
    RouterArgs a;
    a.x = x.ptr<float>();
    a.n = int(x.dim(0));
    a.H = int(x.dim(1));
    a.E = int(weight.dim(0));
    a.k = k;
    a.weight = weight.ptr<uint16_t>();
    a.bias = bias.data;
    a.bias_bf16 = bias.dtype == DType::BF16;
    a.expert_idx = expert_idx.ptr<int32_t>();
    a.expert_weight = expert_weight.ptr<float>();
    return a;
  }
  MoeArgs moe_args(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
                   const SwigluParams& swiglu, Tensor& out) const {
    checks::moe(x, expert_idx, expert_weight, w, out, device());
    const int64_t n = x.dim(0), h = x.dim(1), e = w.gate_up.dim(0), inter2 = w.gate_up.dim(1);
    MoeArgs a;
    a.x = x.ptr<float>();
    a.expert_idx = expert_idx.ptr<int32_t>();
    a.expert_weight = expert_weight.ptr<float>();
    a.n = int(n);
    a.k = int(expert_idx.dim(1));
    a.E = int(e);
    a.H = int(h);
    a.I = int(inter2 / 2);
    a.bf16 = w.gate_up.dtype == DType::BF16;  // checks::moe: then down is bf16 too, both [E, out, in]
    a.gate_up = static_cast<const uint8_t*>(w.gate_up.data);
    a.gate_up_scales = static_cast<const uint8_t*>(w.gate_up.scales);
    a.gate_up_bias = w.gate_up_bias.data;
    a.gate_up_bias_bf16 = w.gate_up_bias.dtype == DType::BF16;
    a.down = static_cast<const uint8_t*>(w.down.data);
    a.down_scales = static_cast<const uint8_t*>(w.down.scales);
    a.down_bias = w.down_bias.data;
    a.down_bias_bf16 = w.down_bias.dtype == DType::BF16;
    a.decode_layout = w.decode_layout;
    a.act_bf16 = w.activations == ExpertActivations::Bf16;
    a.limit = swiglu.limit;
    a.alpha = swiglu.alpha;
    a.out = out.ptr<float>();
    a.err = err_;
    a.counters = counters_;
    return a;
  }

 private:
  // sample_rows' and queue_sample_rows' launches, in stream order, all without a host sync: the greedy rows
  // (greedy_rows: their logit rows, g of them) listed at ids[count, count + g) and argmax-ed into
  // ids[count + g, count + 2g); the sampled rows' draws into ids[i]: rows without a ranking to sort (top-k
  // and top-p off) in one sample_rows launch (each row split over the vocabulary), the others one by one. Pool blocks are
  // reused in stream order, so dropping the workspaces when this returns is safe.
  void launch_draws(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<SampleParams>& params,
                    const std::vector<float>& uniforms, const std::vector<int32_t>& greedy_rows, Tensor& ids) {
    const int64_t count = int64_t(rows.size()), g = int64_t(greedy_rows.size());
    const int vocab = int(logits.dim(1));
    int32_t* ids_p = ids.ptr<int32_t>();
    std::shared_ptr<void> greedy_ws;
    if (g) {
      Tensor list = ids.rows(count, g);
      copy_from_host(list, greedy_rows.data(), size_t(g) * sizeof(int32_t));
      greedy_ws = pool_->alloc(argmax_rows_workspace_bytes(vocab, int(g)));
      launch_argmax_rows(logits.ptr<float>(), vocab, ids_p + count, int(g), greedy_ws.get(), ids_p + count + g, stream_);
    }
    std::vector<RowDraw> plain;
    for (int64_t i = 0; i < count; ++i) {
      const SampleParams& p = params[size_t(i)];
      if (p.temperature == 0.f || sample_ranked(vocab, p)) continue;
      RowDraw d;
      d.row = rows[size_t(i)];
      d.out = int(i);
      d.temperature = p.temperature;
      d.min_p = p.min_p;
      d.uniform = uniforms[size_t(i)];
      plain.push_back(d);
    }
    std::shared_ptr<void> plain_ws;
    if (!plain.empty()) {
      static_assert(sizeof(RowDraw) % sizeof(int32_t) == 0, "RowDraw travels as i32 words");
      Tensor draws = empty(DType::I32, {int64_t(plain.size() * sizeof(RowDraw) / sizeof(int32_t))});
      copy_from_host(draws, plain.data(), plain.size() * sizeof(RowDraw));
      plain_ws = pool_->alloc(sample_rows_workspace_bytes(vocab, int(plain.size())));
      launch_sample_rows(logits.ptr<float>(), vocab, reinterpret_cast<const RowDraw*>(draws.data), int(plain.size()),
                         plain_ws.get(), ids_p, stream_);
    }
    std::shared_ptr<void> ws;
    size_t ws_bytes = 0;
    for (int64_t i = 0; i < count; ++i) {
      const SampleParams& p = params[size_t(i)];
      if (p.temperature == 0.f || !sample_ranked(vocab, p)) continue;
      const size_t need = sample_workspace_bytes(vocab, p);
      if (need > ws_bytes) {
        ws = pool_->alloc(need);  // stream-ordered: the previous row's kernels finish before reuse
        ws_bytes = need;
      }
      launch_sample(logits.ptr<float>() + int64_t(rows[size_t(i)]) * vocab, vocab, p, uniforms[size_t(i)], ws.get(),
                    counters_, ids_p + i, stream_);
    }
  }

  void set_device() const { GPTOSS_CUDA_CHECK(cudaSetDevice(index_)); }

  // Every op holds op_mu_ while it enqueues: run_step holds it for the whole capture, so another
  // thread's op cannot land inside a graph being captured on the shared stream (recursive: the
  // step's own ops run on the capturing thread).
  // Held while an op enqueues: the op lock, the device, and whether its kernels may use
  // programmatic dependent launch (t_pdl, common.cuh; restored for nested ops).
  struct OpScope {
    explicit OpScope(const CudaBackend* be) : lock(be->op_mu_), saved_pdl(t_pdl) {
      be->set_device();
      t_pdl = be->pdl_;
    }
    ~OpScope() { t_pdl = saved_pdl; }
    std::lock_guard<std::recursive_mutex> lock;
    bool saved_pdl;
  };

  void not_capturing(const char* what) const {
    if (capturing_)
      throw runtime_error(std::string(what) +
                          " inside a captured decode step: host copies and syncs are not allowed in run_step()");
  }
  void check_device_errors() {
    int flags = 0;
    GPTOSS_CUDA_CHECK(cudaMemcpy(&flags, err_, sizeof flags, cudaMemcpyDeviceToHost));
    if (!flags) return;
    GPTOSS_CUDA_CHECK(cudaMemset(err_, 0, sizeof(int)));
    std::string what;
    if (flags & kErrTokenRange) what += "embedding: a token id is outside the vocabulary; ";
    if (flags & kErrPositionRange) what += "kvStore/attention: a position is outside the KV cache; ";
    if (flags & kErrExpertRange) what += "moe: an expert index is outside [0, experts); ";
    throw range_error(gpu_device_str(index_) + ": " + what + "(detected on the device; the outputs of that op are invalid)");
  }

  int index_;
  const GpuCaps& caps_;  // built once per device (device.h)
  StepGraphs graphs_;
  cudaStream_t stream_ = nullptr;
  std::shared_ptr<DevicePool> pool_;
  std::shared_ptr<void> err_block_;
  int* err_ = nullptr;
  static constexpr size_t kStagingBytes = 256 * 1024;
  uint8_t* staging_ = nullptr;  // pinned; [0, staging_used_) may still be read by queued copies
  size_t staging_used_ = 0;
  void sync_stream() {
    GPTOSS_CUDA_CHECK(cudaStreamSynchronize(stream_));
    staging_used_ = 0;
  }
  std::shared_ptr<void> counters_block_;
  int* counters_ = nullptr;  // kCountersTotal ints, zero between launches
  int32_t* result_ = nullptr;
  // queue_token_read: pinned slots and their copies' events (allocated on first use), tickets in order
  static constexpr int kReads = 64;
  static constexpr uint64_t kTicketQueued = 1ull << 63;
  int32_t* reads_ = nullptr;
  cudaEvent_t read_events_[kReads] = {};
  uint64_t next_read_ = 0;
  // queue_sample_rows: kRowReads pinned slots of kRowReadMax ids and their copies' events (first use)
  static constexpr int kRowReads = 8, kRowReadMax = 256;
  int32_t* row_reads_ = nullptr;
  cudaEvent_t row_events_[kRowReads] = {};
  uint64_t next_row_read_ = 0;
  bool row_reads_failed_ = false;
  bool row_reads_ready() {
    if (row_reads_) return true;
    if (row_reads_failed_) return false;
    if (cudaHostAlloc(reinterpret_cast<void**>(&row_reads_), sizeof(int32_t) * kRowReads * kRowReadMax, cudaHostAllocDefault) !=
        cudaSuccess) {
      (void)cudaGetLastError();
      row_reads_ = nullptr;
      row_reads_failed_ = true;
      return false;
    }
    for (cudaEvent_t& e : row_events_) GPTOSS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return true;
  }
  bool capturing_ = false, pdl_ = false;
  bool fuse_ = true;  // the fused ops' kernels (GPTOSS_CUDA_FUSE, default on)
  mutable std::recursive_mutex op_mu_;
};

}  // namespace cuda

std::shared_ptr<Backend> make_cuda_backend(int index) {
  // Never destroyed: at process exit a libuv thread may still be running a forward pass on a backend,
  // and cudart tears itself down in its own atexit handler; a static destructor here could race both.
  static std::mutex& mu = *new std::mutex;
  static std::map<int, std::shared_ptr<Backend>>& backends = *new std::map<int, std::shared_ptr<Backend>>;
  std::lock_guard<std::mutex> lock(mu);
  auto it = backends.find(index);
  if (it != backends.end()) return it->second;
  int count = 0;
  std::string reason = cuda_probe(&count);
  if (!reason.empty()) throw runtime_error("CUDA is not available: " + reason);
  if (index < 0 || index >= count)
    throw range_error("cuda:" + std::to_string(index) + " does not exist (" + std::to_string(count) + " CUDA device" +
                      (count == 1 ? "" : "s") + ")");
  auto be = std::make_shared<cuda::CudaBackend>(index);
  backends[index] = be;
  return be;
}

}  // namespace gptoss

#include "bench_hooks.h"

namespace gptoss {
cudaStream_t cuda_backend_stream(Backend& backend) {
  auto* be = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!be) throw type_error("cuda_backend_stream: not the CUDA backend: " + backend.describe());
  return be->stream();
}
}  // namespace gptoss
