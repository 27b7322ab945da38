// The small interface the gpt-oss forward pass is written against. One implementation per device
// (cpu/backend_cpu.cpp, cuda/dispatch.cu); each is that backend's single dispatch point.
//
// Conventions shared by every backend:
//  - Activations are f32, row-major, first dimension = tokens. Weights stay in checkpoint dtypes:
//    bf16 [out, in] (torch Linear layout) or packed MXFP4 (never a dequantized copy).
//  - Every tensor passed to an op lives on this backend's device(); host-side ints (k, window) are
//    plain arguments. Positions/tokens are device tensors so a decode step can be replayed (CUDA graphs).
//  - Ops check shapes/dtypes and throw gptoss::Error naming the argument: they are reachable from JS.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/tensor.h"
#include "logprobs.h"

namespace gptoss {

// What the CPU kernels multiply the MXFP4 experts and the Q8_0 dense weights (a GGUF's attention and LM
// head, denseWeights: 'q8') with (a load option, model.info.activations): F32 the activations as they are
// (exact: the reference's products, summed in another order); Q8 each 32-value block of activations
// rounded to int8 with an f32 scale (llama.cpp's q8_0), so the products are integer dot products. bf16
// weights take f32 either way. Q8 is a CPU mode. Bf16 is a CUDA mode: the grouped MXFP4 expert GEMMs on
// Hopper's wgmma tile (prefill chunks of 128+ routed rows an expert) multiply the activations rounded to bf16
// (their high half) instead of as bf16 hi + lo, half the tensor-core work; every other kernel as F32.
enum class ExpertActivations { F32, Q8, Bf16 };
const char* expert_activations_name(ExpertActivations a);
// "f32" | "q8" | "bf16"; throws RangeError naming `what` otherwise.
ExpertActivations parse_expert_activations(const std::string& s, const std::string& what);

// The KV cache type a model runs with (a load option, loadModel's kvCache; model.info.kvCache): the
// element type of its K rows and of its V rows. "f16" | "bf16" | "f32" keep both alike; "f32k-f16v"
// keeps K exact and V in f16 (6 bytes a K/V element pair instead of 4 or 8): rounding K tips
// near-tied router choices downstream on deep checkpoints, rounding V does not (bench/RESULTS.md,
// issue 12 "KV cache dtype").
struct KvCacheType {
  DType key = DType::F32;
  DType value = DType::F32;
  friend bool operator==(const KvCacheType& a, const KvCacheType& b) { return a.key == b.key && a.value == b.value; }
  friend bool operator!=(const KvCacheType& a, const KvCacheType& b) { return !(a == b); }
};
inline constexpr KvCacheType kKvF32{DType::F32, DType::F32};
inline constexpr KvCacheType kKvBF16{DType::BF16, DType::BF16};
inline constexpr KvCacheType kKvF16{DType::F16, DType::F16};
inline constexpr KvCacheType kKvF32KF16V{DType::F32, DType::F16};
// "f16", "bf16", "f32" (K and V alike) or "<k>k-<v>v" ("f32k-f16v").
std::string kv_cache_name(KvCacheType t);
// The names above; throws RangeError naming `what` otherwise.
KvCacheType parse_kv_cache(const std::string& s, const std::string& what);
// The cache's bytes for `elements` values of K and as many of V.
uint64_t kv_cache_bytes(KvCacheType t, int64_t elements);

// One layer's experts as stored in the checkpoint (transformers' GptOssExperts, MXFP4 packed), in
// one of two forms:
//  - Hugging Face: gate_up MXFP4 [E, 2*I, H], rows interleaved (even = gate, odd = up), and its bias.
//  - GGUF (llama.cpp's conversion splits gate_up by rows ::2 / 1::2): gate and up MXFP4_GGML
//    [E, I, H] with their biases; gate_up is then undefined. CPU only (op_checks.h: moe).
// down is MXFP4 [E, H, I] (HF) or MXFP4_GGML (GGUF). Biases bf16 or f32.
// A fine-tuned checkpoint saved by transformers in bf16 (Mxfp4Config(dequantize=True)) run as stored
// (loadModel's experts: 'bf16'): on the CPU gate_up BF16 [E, H, 2*I] and down BF16 [E, I, H], the
// transpose of the blocks' [out, in] (out = x @ W[e]), gate/up still interleaved; on a GPU the blocks'
// row layout, gate_up BF16 [E, 2*I, H] (even rows gate, odd up) and down BF16 [E, H, I]: the loader
// moves them there at upload (cpu::transpose_experts). Either way both are bf16 (GPU: checked).
struct MoeWeights {
  Tensor gate_up;       // MXFP4 [E, 2*I, H]; rows interleaved: even = gate, odd = up
  Tensor gate_up_bias;  // [E, 2*I]
  Tensor down;          // [E, H, I]
  Tensor down_bias;     // [E, H]
  ExpertActivations activations = ExpertActivations::F32;  // MXFP4 experts (either block form); bf16 take f32
  // CUDA: gate_up and down were re-laid at upload into the decode layout (cuda/mxfp4_layout.h,
  // Backend::prepare_experts); only that backend's kernels read them then.
  bool decode_layout = false;
  Tensor gate, up;      // GGUF form: MXFP4_GGML [E, I, H] each
  Tensor gate_bias, up_bias;  // GGUF form: [E, I] each

  bool split() const { return !gate_up.defined() && gate.defined(); }
  int64_t experts() const { return split() ? gate.dim(0) : gate_up.dim(0); }
  int64_t intermediate() const {  // the CPU's layouts (a GPU's bf16 gate_up is [E, 2*I, H])
    return split() ? gate.dim(1) : gate_up.dtype == DType::BF16 ? gate_up.dim(2) / 2 : gate_up.dim(1) / 2;
  }
};

struct SwigluParams {
  float limit = 7.0f;   // gate <= limit, -limit <= up <= limit (config swiglu_limit)
  float alpha = 1.702f; // glu = gate * sigmoid(alpha * gate)
};

struct SampleParams {
  float temperature = 0.f;  // 0 = greedy (argmax, lowest index on ties)
  int top_k = 0;            // 0 = off
  float top_p = 1.f;        // 1 = off
  float min_p = 0.f;        // 0 = off
};

// A logit row the sampler cannot draw from (every backend, any temperature): a NaN or +Infinity
// anywhere, or no logit above -Infinity. The samplers return (the CUDA one writes where the id
// goes) a negative code instead of an id; checks::sampled_token() turns it into the RangeError that
// names the position. lib/sampling.ts sampleFromLogits applies the same rule.
constexpr int32_t kSampleNoFiniteLogit = -1;
constexpr int32_t sample_bad_logit_code(int64_t index) { return int32_t(-2 - index); }
namespace checks {
int32_t sampled_token(int32_t code, const char* fn);  // op_checks.cpp
}

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual std::string describe() const = 0;  // e.g. "cpu: 2 threads, avx512" or "cuda:0 NVIDIA H200 (sm_90)"

  // ---- memory ----
  virtual Tensor empty(DType dtype, const Shape& shape) = 0;
  // A device copy of a host tensor. The CPU backend returns the same tensor (zero copy: the
  // file mapping is the memory).
  virtual Tensor upload(const Tensor& host) = 0;
  virtual void copy_from_host(Tensor& dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(const Tensor& src, void* dst, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // The KV cache types this backend's attention kernels read and write, default first (a model's
  // cache is a load option, loadModel's kvCache; Model::set_kv_cache checks it against this list).
  // CPU: f32 only (its attention reads f32 rows). CUDA: bf16 (default), f16, f32, f32k-f16v.
  virtual std::vector<KvCacheType> kv_types() const { return {kKvF32}; }
  KvCacheType default_kv_type() const { return kv_types().front(); }
  // Once per layer after its experts are uploaded: a backend may re-lay them for its kernels (a
  // one-time transform; the checkpoint stays as published). Returns a line for the load report when
  // it did (CUDA: Hopper by default, elsewhere GPTOSS_CUDA_MOE_DECODE=mma-relaid), else "". Default: nothing.
  virtual std::string prepare_experts(MoeWeights& w) { (void)w; return ""; }

  // ---- ops ----
  // out[n, H] = table[tokens[i], :]  (table bf16 [V, H]; token out of range -> RangeError on CPU)
  virtual void embedding(const Tensor& tokens, const Tensor& table, Tensor& out) = 0;
  // out = x / sqrt(mean(x^2) + eps) * weight, per row; computed in f32 (transformers GptOssRMSNorm).
  virtual void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  // out[n, O] = x[n, I] @ W[O, I]^T (+ bias[O]). W bf16 or MXFP4 (one expert's [O, I]).
  virtual void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) = 0;
  // What the linears issued next on the calling thread multiply Q8_0 weights with (the model sets it from
  // its activations option at the start of each forward pass): on the CPU, Q8 quantizes the activations
  // per 32-block and takes integer dot products, as llama.cpp does; F32 (the default) is exact. Other
  // backends multiply f32 activations and ignore it (the model refuses q8 off the CPU).
  virtual void set_activations(ExpertActivations a) { (void)a; }
  virtual ExpertActivations activations() const { return ExpertActivations::F32; }
  // In place on x [n, heads, D]: halves rotation (x1*c - x2*s, x2*c + x1*s) with
  // angle = positions[i] * inv_freq[j] (f32 product, as transformers), c = cos*scale, s = sin*scale.
  virtual void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) = 0;
  // k_cache[positions[i]] = k[i], v_cache likewise (rounded to nearest even into a 16-bit cache).
  // Caches [ctx, kvHeads, D], their dtypes one of kv_types() (K's, V's).
  virtual void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                        Tensor& v_cache) = 0;
  // Causal attention with a per-head sink logit. Query i (at positions[i]) sees cache rows j with
  // j <= positions[i] and, if sliding_window > 0, positions[i] - j < sliding_window. GQA: query
  // head h reads kv head h / (Hq / Hkv). softmax over [scores * softmax_scale, sink[h]], sink dropped.
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                         const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) = 0;
  // Router: logits = x W^T + b (W bf16 [E, H]); top-k by logit (ties: lower index first);
  // weights = softmax over the k selected logits. expert_idx i32 [n, k], expert_weight f32 [n, k].
  virtual void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
                      Tensor& expert_weight) = 0;
  // out[n, H] = sum_k expert_weight[n,k] * expert(expert_idx[n,k], x[n]), where
  // expert(e, x) = down_e(swiglu(gate_up_e(x) + b_gu)) + b_d (biases included before weighting).
  virtual void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
                   const SwigluParams& swiglu, Tensor& out) = 0;
  // acc += x (same shape, f32).
  virtual void add(Tensor& acc, const Tensor& x) = 0;

  // ---- fused ops: each is the composition written in its default body, in one step ----
  // A backend overrides one to save launches (CUDA: one kernel each in a decode step); the default
  // runs the ops above, so the CPU backend keeps them as the reference and results stay comparable.
  // Argument checks: model/op_checks.h (add_rmsnorm, qkv, rope_kv_store; add_rmsnorm_router is
  // add_rmsnorm's and router's, add_rmsnorm_qkv add_rmsnorm's and qkv's).

  // The residual add that closes a block, and the norm that opens the next one:
  // x += residual; normed = rmsnorm(x, weight, eps).
  virtual void add_rmsnorm(Tensor& x, const Tensor& residual, const Tensor& weight, float eps, Tensor& normed) {
    add(x, residual);
    rmsnorm(x, weight, eps, normed);
  }
  // The attention block's closing residual add, the MoE block's norm, and its router:
  // add_rmsnorm(x, residual, norm_weight, eps, normed), then router(normed, ...).
  virtual void add_rmsnorm_router(Tensor& x, const Tensor& residual, const Tensor& norm_weight, float eps,
                                  Tensor& normed, const Tensor& router_weight, const Tensor& router_bias, int k,
                                  Tensor& expert_idx, Tensor& expert_weight) {
    add_rmsnorm(x, residual, norm_weight, eps, normed);
    router(normed, router_weight, router_bias, k, expert_idx, expert_weight);
  }
  // The MoE block's closing residual add, the next attention block's norm, and its projections:
  // add_rmsnorm(x, residual, norm_weight, eps, normed), then qkv(normed, ...).
  virtual void add_rmsnorm_qkv(Tensor& x, const Tensor& residual, const Tensor& norm_weight, float eps, Tensor& normed,
                               const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
                               const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) {
    add_rmsnorm(x, residual, norm_weight, eps, normed);
    qkv(normed, wq, bq, wk, bk, wv, bv, q, k, v);
  }
  // The attention block's three projections of one normed input: q = xn Wq^T + bq, k, v likewise.
  virtual void qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk,
                   const Tensor& wv, const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) {
    linear(xn, wq, &bq, q);
    linear(xn, wk, &bk, k);
    linear(xn, wv, &bv, v);
  }
  // RoPE on q [n, Hq, D] and k [n, Hkv, D] (in place, as rope()), then the cache write of the
  // rotated k and of v at `positions` (as kv_store()).
  virtual void rope_kv_store(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& inv_freq,
                             float scale, Tensor& k_cache, Tensor& v_cache) {
    rope(q, positions, inv_freq, scale);
    rope(k, positions, inv_freq, scale);
    kv_store(k, v, positions, k_cache, v_cache);
  }

  // ---- paged KV cache (model/kv_cache.h): a pool of blocks shared by many sequences ----
  // A pool cache is [blocks * block_size, kvHeads, D]; a sequence's logical position p lives in cache row
  // block_tables[seq][p / block_size] * block_size + p % block_size (its "slot").
  // Whether paged_attention (and so the batched step) runs on this backend.
  virtual bool paged_kv() const { return false; }
  // As rope_kv_store(), but the rotated k and v go to cache rows `slots` (i32 [n]) while RoPE reads
  // `positions`: the write of a token into its sequence's block.
  virtual void rope_kv_store_slots(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& slots,
                                   const Tensor& inv_freq, float scale, Tensor& k_cache, Tensor& v_cache) {
    rope(q, positions, inv_freq, scale);
    rope(k, positions, inv_freq, scale);
    kv_store(k, v, slots, k_cache, v_cache);
  }
  // attention() over a pool: query i belongs to sequence seq_of_token[i] (a row of block_tables,
  // i32 [seqs, maxBlocks]) and sees that sequence's keys at logical positions as attention() does.
  virtual void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                               const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables,
                               int block_size, int sliding_window, float softmax_scale, Tensor& out) {
    throw runtime_error("pagedAttention: the paged KV cache is not implemented on " + describe());
  }
  // out[i] = x[rows[i]] (x f32 [n, C], rows i32 [r] on this device, out f32 [r, C]). Default: through
  // the host (the CPU's copies are memcpy; a device backend overrides it).
  virtual void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out);

  // MXFP4 [..., R, C] -> f32 or bf16 [..., R, C] (tests, tools; the model never calls it).
  virtual void mxfp4_dequantize(const Tensor& packed, Tensor& out) = 0;
  // One token id from logits f32 [V] (row 0 of a [1, V] tensor is fine). `uniform` in [0, 1) drives
  // the draw so the host owns the seed; temperature 0 is argmax.
  virtual int32_t sample(const Tensor& logits, const SampleParams& params, float uniform) = 0;

  // A batch step's draws: for each i, one id from row rows[i] of logits [r, V] with params[i] and
  // uniforms[i], as sample() of that row (the code of a row with no distribution, unchecked).
  // Default: sample() row by row; a device backend draws them all before one copy back.
  virtual std::vector<int32_t> sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                           const std::vector<SampleParams>& params, const std::vector<float>& uniforms);

  // For each j: row rows[j] of logits f32 [r, V] as a RowTop (logprobs.h: its log-sum-exp and its tops[j] (0..20)
  // largest entries as log-probabilities). Default: each row copied to the host; CUDA computes them on the device
  // (a block a row) and copies back only these.
  virtual std::vector<RowTop> logprob_top(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<int>& tops);
  // The logit at (row, id) of logits f32 [r, V]: one float copied back.
  float logit_at(const Tensor& logits, int64_t row, int32_t id);

  // ---- pipelined decode (Session::step_many): the next step is queued before this one's token is read ----
  // As sample(), but the id goes to `token` (I32 [1] on this device), nothing comes back yet.
  virtual void sample_into(const Tensor& logits, const SampleParams& params, float uniform, Tensor& token) {
    // a row with no distribution fails here, before the next step could read the code as a token
    const int32_t t = checks::sampled_token(sample(logits, params, uniform), "sample");
    copy_from_host(token, &t, sizeof t);
  }
  // Queues a copy of token[0] to the host and returns a ticket; read_token(ticket) waits for that copy
  // and returns the id (device errors surface there). A ticket is read once, within the next 64 queued.
  // Default: the copy happens now and the ticket is the id.
  virtual uint64_t queue_token_read(const Tensor& token) {
    int32_t t = 0;
    copy_to_host(token, &t, sizeof t);
    return uint64_t(uint32_t(t));
  }
  virtual int32_t read_token(uint64_t ticket) { return int32_t(uint32_t(ticket)); }

  // ---- pipelined batch decode (Batch with pipelineDecode: the next step is queued before this one's ids are read) ----
  // As sample_rows (the same draws), but each id also goes to tokens[rows[j]] (I32 on this device: the
  // next step's input; a row with no distribution writes 0 there, the caller discards that step) and
  // nothing waits: read_rows() returns the ids (codes included, unchecked) in draw order. Default: the
  // draws happen now and the ticket carries them.
  struct RowsTicket {
    uint64_t ticket = 0;
    bool ready = false;          // ids holds the draws already
    std::vector<int32_t> ids;
  };
  virtual RowsTicket queue_sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                       const std::vector<SampleParams>& params, const std::vector<float>& uniforms,
                                       Tensor& tokens);
  // Waits for a queued ticket's draws (device errors surface here) and returns them. Read each ticket
  // once, before 8 more are queued.
  virtual std::vector<int32_t> read_rows(RowsTicket& ticket) { return std::move(ticket.ids); }

  // Decode-step capture hooks (CUDA graphs). The forward pass brackets a fixed-shape step with
  // these; a backend without graphs runs `step` directly.
  virtual void run_step(uint64_t /*shape_key*/, void* /*owner*/, const std::function<void()>& step) { step(); }
  virtual void forget_steps(void* /*owner*/) {}
};

// The backend for a device. CPU always exists; CUDA and HIP throw a clear Error naming the reason
// when the addon was built without them or no device/driver/runtime is present. Backends are process-wide singletons (shared by every
// Node context and worker thread); they are thread-safe for calls on distinct tensors.
std::shared_ptr<Backend> get_backend(const Device& device);
// Why CUDA is unavailable ("" when it is available): for `auto` device selection.
std::string cuda_unavailable_reason();
int cuda_device_count();
// The same for HIP (AMD GPUs through ROCm; native/hip/hip_loader.h loads the runtime and plugin).
std::string hip_unavailable_reason();
int hip_device_count();

}  // namespace gptoss
