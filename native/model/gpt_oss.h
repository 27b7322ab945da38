// The gpt-oss model: weights bound to a backend, and sessions that run the forward pass over a KV cache.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "config.h"
#include "logit_bias.h"
#include "logprobs.h"
#include "core/mapped_file.h"

namespace gptoss {

// One tensor as a safetensors header describes it (already checked against its file by the loader).
struct TensorRecord {
  std::string name;
  int file = 0;            // index into the checkpoint's files
  std::string dtype;       // safetensors dtype: "BF16", "U8", "F32", ...
  Shape shape;
  uint64_t offset = 0;     // absolute byte offset of the data in the file
  uint64_t length = 0;
};

struct AttentionWeights {
  Tensor norm;                       // input_layernorm.weight bf16 [H]
  Tensor q, k, v, o;                 // bf16 [out, in]
  Tensor q_bias, k_bias, v_bias, o_bias;
  Tensor sinks;                      // bf16 [Hq]
};

struct MlpWeights {
  Tensor norm;                       // post_attention_layernorm.weight bf16 [H]
  Tensor router, router_bias;        // bf16 [E, H], [E]
  MoeWeights experts;
};

struct LayerWeights {
  AttentionWeights attn;
  MlpWeights mlp;
  bool sliding = false;
};

struct Weights {
  Tensor embedding;  // bf16 [V, H]
  std::vector<LayerWeights> layers;
  Tensor norm;       // bf16 [H]
  Tensor lm_head;    // bf16 [V, H] (untied)
};

// The file formats a model loads from (lib/loader): Hugging Face safetensors, or a GGUF file
// (llama.cpp's gpt-oss conversion: ggml names, gate/up experts split, ggml block types).
enum class WeightFormat : uint8_t { HuggingFace, Gguf };

// What a weight is for: decides which storage dtypes bind to it (WeightSlot::accepts).
enum class WeightRole : uint8_t {
  Param,      // vectors: norms, biases, sinks (bf16 or f32; f16 is widened to f32 at load)
  Matrix,     // attention projections and the LM head: bf16, f32, f16, Q8_0
  Embedding,  // bf16, f32, f16, Q8_0
  Router,     // bf16 or f32 (f16 widened to f32)
  Experts,    // MXFP4 (HF blocks + scales) or MXFP4_GGML (GGUF)
};

// One weight the config implies, under its name in the file's format. Hugging Face BF16: the tensor
// `name` of `shape`; MXFP4: `name`_blocks U8 [E, R, C/32, 16] + `name`_scales U8 [E, R, C/32], bound as
// one MXFP4 tensor of `shape` [E, R, C]. GGUF: the tensor `name` of `shape` (outermost dimension first,
// ggml's order reversed by the loader) in any dtype the role accepts.
struct WeightSlot {
  DType dtype = DType::BF16;  // the Hugging Face checkpoint's dtype: BF16 or MXFP4
  std::string name;
  Shape shape;
  Tensor* target = nullptr;   // where the bound tensor goes in Weights
  WeightRole role = WeightRole::Param;
  const char* group = "";     // model.info's tensor group: embedding, attention, router, experts, norms, lmHead

  // Bytes in the Hugging Face checkpoint (MXFP4: blocks + scales).
  uint64_t bytes() const;
};

// Every weight of the model in checkpoint (state_dict) order: embedding, layers 0..L-1, final norm,
// LM head. Sizes w.layers (and sets each layer's attention kind) first. The one place the tensor names
// and shapes are spelled: Model::load binds each slot from the checkpoint, Model::synthetic generates it.
std::vector<WeightSlot> weight_slots(const ModelConfig& c, Weights& w, WeightFormat format = WeightFormat::HuggingFace);

struct LoadOptions {
  WeightFormat format = WeightFormat::HuggingFace;
  // Quantize bf16/f16/f32 attention projections and the LM head to Q8_0 at load (CPU).
  bool dense_q8 = false;
  // Experts stored dense (a fine-tuned checkpoint saved in bf16): false = quantize to MXFP4 at load,
  // true = run the bf16 weights as stored (CPU; CUDA: transposed to [E, out, in] at upload).
  bool experts_bf16 = false;
};

// What Model::load bound, per tensor group (model.info): the dtypes as stored and as run, bytes in the
// file and in memory, and what was converted at load.
struct LoadGroup {
  std::string group;
  std::string file_dtypes;    // e.g. "q8_0" or "bf16+f32"
  std::string memory_dtypes;
  uint64_t file_bytes = 0;
  uint64_t memory_bytes = 0;  // bytes of the tensors the model runs from (mapped or converted)
  uint64_t converted_bytes = 0;  // of memory_bytes, those written at load (heap, not the mapping)
};
struct LoadReport {
  std::vector<LoadGroup> groups;
  double convert_seconds = 0;  // time spent converting (quantizing, widening) at load
  double read_wait_seconds = 0;  // time conversions waited for file reads (bytes read ahead for them)
  double page_in_seconds = 0;    // time mapping the tensors the model runs from in place (CPU, files that fit RAM)
  std::vector<std::string> conversions;  // one line each: "lmHead: bf16 -> q8_0 (denseWeights q8)"
};

// Throws RangeError unless the config describes a model the forward pass can run ("config: ...").
void check_config(const ModelConfig& c);

using LoadProgress = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

// One forward pass's buffers on the device, for n tokens. Logits come either for the last
// `logits_rows` rows (a session: all of them, or the last one) or, when gathered, for the rows listed
// in logit_index (a batch: the last token of each sequence that samples).
struct Activations {
  int n = 0;
  int logits_rows = 0;
  bool gathered = false;
  Tensor tokens, positions;               // i32 [n]; positions are logical (RoPE, the causal mask)
  Tensor x, xn;                           // f32 [n, H] residual stream, normed
  Tensor q, k, v, attn;                   // f32 [n, Hq*D], [n, Hkv*D], [n, Hkv*D], [n, Hq*D]
  Tensor block_out;                       // f32 [n, H]
  Tensor expert_idx, expert_weight;       // i32/f32 [n, k]
  Tensor logit_index, picked;             // gathered only: i32 [rows], f32 [rows, H]
  Tensor final_norm, logits;              // f32 [rows, H], [rows, V]
  // Sizes the buffers; returns false when they already had this shape (nothing reallocated).
  bool resize(Backend& be, const ModelConfig& c, int n, int logits_rows, bool gathered);
};

// The KV cache a pass reads and writes: a session's contiguous cache (a token's row is its position)
// or the blocks of a pool (model/kv_cache.h; its row is its slot, found through its sequence's block
// table).
struct KvView {
  std::vector<Tensor>* k = nullptr;       // per layer: [rows, Hkv, D]
  std::vector<Tensor>* v = nullptr;
  // Paged only (null for a contiguous cache), on the device:
  const Tensor* slots = nullptr;          // i32 [n]: the cache row each token's k/v go to
  const Tensor* seq_of_token = nullptr;   // i32 [n]: the row of block_tables each token reads through
  const Tensor* block_tables = nullptr;   // i32 [seqs, maxBlocks]
  int block_size = 0;
  bool paged() const { return slots != nullptr; }
};

class Model {
 public:
  // Maps the files, binds every tensor the config implies (checking dtype and shape; errors name the
  // file and tensor), and uploads to the backend's device (zero copy on the CPU).
  static std::shared_ptr<Model> load(const ModelConfig& config, const std::vector<std::string>& files,
                                     const std::vector<TensorRecord>& records, const Device& device,
                                     const LoadProgress& progress, const LoadOptions& options = {});

  // Random weights generated in memory (native/model/synthetic.cpp): exactly the tensors
  // scripts/checkpoint-writer.mjs writes for the same config and seed, never read from disk. For
  // benchmarking model shapes whose checkpoint is not at hand; progress counts bytes bound on the device.
  // dense_q8: the attention projections and LM head quantized to Q8_0 before upload, as loadModel's
  // denseWeights: 'q8' does (bench the format at model shapes without a checkpoint).
  // experts_bf16: the generated MXFP4 experts dequantized (exactly) to bf16 and run as bf16 experts, in
  // the device's layout (backend.h MoeWeights; a GPU dequantizes them itself): the same model's values.
  static std::shared_ptr<Model> synthetic(const ModelConfig& config, uint64_t seed, const Device& device,
                                          const LoadProgress& progress, bool dense_q8 = false, bool experts_bf16 = false);

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return *backend_; }
  const Weights& weights() const { return weights_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  const LoadReport& load_report() const { return load_report_; }

  // What the expert kernels multiply the MXFP4 weights with (backend.h ExpertActivations); set once,
  // before the first forward pass. Q8 is a CPU mode: on another device it throws RangeError.
  void set_expert_activations(ExpertActivations a);
  ExpertActivations expert_activations() const { return expert_activations_; }

  // The KV cache type of this model's sessions and batches (loadModel's kvCache); set before the
  // first session. A type the backend's kernels do not take (backend.h kv_types) throws RangeError
  // naming the option and the device: never a silent substitute. Default: the backend's first.
  void set_kv_cache(KvCacheType type);
  KvCacheType kv_cache() const { return kv_cache_; }

  // Forward passes of one model run one at a time (the backend's stream / thread pool is shared).
  std::mutex& run_mutex() { return run_mutex_; }
  // Throws a CheckpointError when a file the weights are read from (CPU) changed on disk since the
  // load; called before each forward pass, under the run mutex.
  void check_files() const;

  // YaRN inverse frequencies [head_dim/2] (on the device) and the cos/sin concentration factor.
  const Tensor& rope_inv_freq() const { return rope_inv_freq_; }
  float rope_scale() const { return rope_scale_; }

  // The forward pass over a.tokens at a.positions: every layer, K/V through kv, then the logits the
  // activations ask for. Queued on the backend (the caller synchronizes or reads results back).
  void forward(Activations& a, const KvView& kv);

 private:
  void init_rope();  // rope_inv_freq_ and rope_scale_ from config_, on the backend's device
  // Backend::prepare_experts on every layer (CUDA's decode layout where asked for), timed into the
  // load report (convert_seconds, one conversions line).
  void prepare_experts();

  ModelConfig config_;
  std::shared_ptr<Backend> backend_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  Weights weights_;
  uint64_t weight_bytes_ = 0;
  LoadReport load_report_;
  ExpertActivations expert_activations_ = ExpertActivations::F32;
  KvCacheType kv_cache_ = kKvF32;  // backend_->default_kv_type() once bound
  Tensor rope_inv_freq_;
  float rope_scale_ = 1.f;
  std::mutex run_mutex_;
};

// Host-side YaRN tables, as transformers' _compute_yarn_parameters (float64 here, stored as f32).
void yarn_inv_freq(const ModelConfig& c, std::vector<float>& inv_freq, float& scale);

enum class LogitsMode { All, Last, None };

// A sequence with its KV cache. prefill/step append tokens at the end of what the cache holds.
class Session {
 public:
  Session(std::shared_ptr<Model> model, int max_context);
  ~Session();

  // Runs tokens [n] at positions [length(), length()+n) and writes logits:
  // All -> [n, V], Last -> [1, V], None -> nothing. Returns the number of floats written.
  size_t forward(const int32_t* tokens, int n, LogitsMode mode, float* logits);
  // Samples the next token from the last row of the logits of the most recent forward (device side),
  // `bias` (logit_bias.h; null or empty: none) added to that row first.
  int32_t sample(const SampleParams& params, float uniform, const LogitBias* bias = nullptr);
  // The log-probabilities (logprobs.h) of `id` and the `top` most likely ids in the last row of the
  // most recent forward's logits: the row sample() or step() drew from, as the model gave it (a bias
  // added for the draw left out).
  TokenLogprobs logprobs(int32_t id, int top);
  // Decode step: appends `token` and samples the next one from its logits (with `bias`, as sample()),
  // without copying logits.
  int32_t step(int32_t token, const SampleParams& params, float uniform, const LogitBias* bias = nullptr);
  // count decode steps as count step() calls (step i appends token i and draws token i + 1 with
  // uniforms[i]; token 0 is `token`), stopping after a drawn id in stops. Step i + 1 is queued before
  // token i + 1 is read back: the ids stay on the device between steps. Returns the drawn ids (at most
  // count; the last is the stop id when one was drawn). When it stops early the step queued past the
  // stop is undone (length() counts the appended tokens only) and there are no logits to sample().
  std::vector<int32_t> step_many(int32_t token, int count, const SampleParams& params, const float* uniforms,
                                 const std::vector<int32_t>& stops);

  int length() const { return length_; }
  int max_context() const { return max_context_; }
  void truncate(int length);  // forget tokens past `length` (reuse the cache prefix)
  const Model& model() const { return *model_; }

 private:
  Activations& scratch(int n, int logits_rows);
  Activations& enqueue(const int32_t* tokens, int n, int logits_rows);  // tokens null: s.tokens holds them

  std::shared_ptr<Model> model_;
  int max_context_;
  int length_ = 0;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer [max_context, Hkv, D]
  Activations scratch_;
  bool have_logits_ = false;
  // The last row before a draw's bias was added to it (valid while raw_valid_: until the next forward).
  std::vector<float> raw_row_;
  bool raw_valid_ = false;
  int32_t draw_from_last(const SampleParams& params, float uniform, const LogitBias* bias, const char* fn);
};

}  // namespace gptoss
