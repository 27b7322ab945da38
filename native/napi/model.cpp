// JS classes NativeModel and NativeSession. Loading and every forward pass run on libuv's thread
// pool (N-API async work) and resolve a Promise: the event loop never waits for the model.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "common.h"
#include "hip/hip_loader.h"
#include "model/gpt_oss.h"
#include "model/synthetic.h"
#include "promise_worker.h"
#include "tensor.h"

namespace gptoss::napi {

namespace {

// The parsed config (lib/loader/config.ts ModelConfig, camelCase keys). Its errors are ConfigErrors
// naming `source` and the config.json field (snake_case), as the TypeScript parser's are; that parser
// checks the same bounds first, so these fire only for a config built by hand.
ModelConfig parse_config(Napi::Object o, const std::string& source) {
  ModelConfig c;
  c.source = source;
  auto integer = [&](Napi::Object from, const char* key, const char* field, int64_t lo, int64_t hi) {
    Napi::Value v = from.Get(key);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d == std::floor(d) && d >= double(lo) && d <= double(hi)))
      throw config_error(source, field, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                            "], got " + v.ToString().Utf8Value());
    return int(d);
  };
  auto number = [&](Napi::Object from, const char* key, const char* field) {
    Napi::Value v = from.Get(key);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d)) throw config_error(source, field, "must be a finite number, got " + v.ToString().Utf8Value());
    return d;
  };
  const int64_t big = 1 << 24;
  c.vocab_size = integer(o, "vocabSize", "vocab_size", 1, big);
  c.hidden_size = integer(o, "hiddenSize", "hidden_size", 1, big);
  c.intermediate_size = integer(o, "intermediateSize", "intermediate_size", 1, big);
  c.num_layers = integer(o, "numLayers", "num_hidden_layers", 1, 4096);
  c.num_experts = integer(o, "numExperts", "num_local_experts", 1, 4096);
  c.experts_per_token = integer(o, "expertsPerToken", "num_experts_per_tok", 1, 4096);
  c.num_heads = integer(o, "numHeads", "num_attention_heads", 1, 4096);
  c.num_kv_heads = integer(o, "numKvHeads", "num_key_value_heads", 1, 4096);
  c.head_dim = integer(o, "headDim", "head_dim", 2, 1024);
  c.sliding_window = integer(o, "slidingWindow", "sliding_window", 0, big);
  c.max_position_embeddings = integer(o, "maxPositionEmbeddings", "max_position_embeddings", 1, 1 << 30);
  c.rope_theta = number(o, "ropeTheta", "rope_theta");
  c.rms_norm_eps = float(number(o, "rmsNormEps", "rms_norm_eps"));
  c.swiglu_limit = float(number(o, "swigluLimit", "swiglu_limit"));
  Napi::Value lt = o.Get("layerTypes");
  if (!lt.IsArray()) throw config_error(source, "layer_types", "must be an array");
  Napi::Array a = lt.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    std::string t = a.Get(i).ToString().Utf8Value();
    if (t != "sliding_attention" && t != "full_attention")
      throw config_error(source, "layer_types", "entry " + std::to_string(i) + " is '" + t + "', expected sliding_attention or full_attention");
    c.layer_sliding.push_back(t == "sliding_attention");
  }
  Napi::Value rs = o.Get("ropeScaling");
  if (rs.IsObject()) {
    Napi::Object r = rs.As<Napi::Object>();
    c.rope_yarn = true;
    c.rope_factor = number(r, "factor", "rope_scaling.factor");
    c.rope_original_max_positions = number(r, "originalMaxPositionEmbeddings", "rope_scaling.original_max_position_embeddings");
    c.rope_beta_fast = number(r, "betaFast", "rope_scaling.beta_fast");
    c.rope_beta_slow = number(r, "betaSlow", "rope_scaling.beta_slow");
    c.rope_truncate = r.Get("truncate").ToBoolean().Value();
  } else if (!rs.IsNull() && !rs.IsUndefined()) {
    throw config_error(source, "rope_scaling", "must be an object or null");
  } else {
    c.rope_yarn = false;
  }
  return c;
}

std::vector<TensorRecord> parse_records(Napi::Array a, size_t file_count) {
  std::vector<TensorRecord> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw type_error("tensors[" + std::to_string(i) + "] must be an object");
    Napi::Object o = v.As<Napi::Object>();
    TensorRecord r;
    r.name = o.Get("name").ToString().Utf8Value();
    const std::string w = "tensor '" + r.name + "'";
    r.file = get_int_field(o, "file", w, 0, int64_t(file_count) - 1);
    r.dtype = o.Get("dtype").ToString().Utf8Value();
    r.shape = to_shape(o.Env(), o.Get("shape"), w + ".shape");
    r.offset = uint64_t(get_num_field(o, "offset", w));
    r.length = uint64_t(get_num_field(o, "length", w));
    out.push_back(std::move(r));
  }
  return out;
}

ModelConfig config_arg(Napi::Object spec, const char* fn) {
  Napi::Value v = spec.Get("config");
  if (!v.IsObject()) throw type_error(std::string(fn) + ": spec.config must be an object");
  Napi::Value file = spec.Get("configFile");
  return parse_config(v.As<Napi::Object>(), file.IsString() ? file.As<Napi::String>().Utf8Value() : std::string("config"));
}

// A seed as the checkpoint writer takes it (JS stringifies it): an integer in [0, 2^53).
uint64_t seed_arg(Napi::Object spec, const char* fn) {
  Napi::Value v = spec.Get("seed");
  if (!v.IsNumber()) throw type_error(std::string(fn) + ": spec.seed must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != std::floor(d))
    throw range_error(std::string(fn) + ": spec.seed must be an integer in [0, 2^53), got " + v.ToString().Utf8Value());
  return uint64_t(d);
}

// spec[key] as a string; `fallback` where it is absent or not a string (lib/ passes its defaults).
std::string spec_string(const Napi::Object& spec, const char* key, const char* fallback) {
  const Napi::Value v = spec.Get(key);
  return v.IsString() ? v.ToString().Utf8Value() : std::string(fallback);
}

// spec.device: "cpu" when absent, else as parse_device reads it.
Device device_arg(const Napi::Object& spec, const char* fn) {
  return parse_device(spec_string(spec, "device", "cpu"), std::string(fn) + ": spec.device");
}

// spec[key], one of two words, the first when absent: whether it is the second. Anything else is a
// RangeError "<fn>: spec.<key> must be '<first>' or '<second>', got '<value>'" (load and synthetic
// read spec.format, spec.denseWeights and spec.experts this way).
bool choice_arg(const Napi::Object& spec, const char* key, const char* fn, const char* first, const char* second) {
  const std::string v = spec_string(spec, key, first);
  if (v != first && v != second)
    throw range_error(std::string(fn) + ": spec." + key + " must be '" + first + "' or '" + second + "', got '" + v + "'");
  return v == second;
}

// spec.activations: 'f32' | 'q8' | 'bf16' (absent: f32; the TypeScript side applies GPTOSS_CPU_ACTIVATIONS).
ExpertActivations activations_arg(const Napi::Object& spec, const char* fn) {
  const Napi::Value v = spec.Get("activations");
  if (v.IsUndefined()) return ExpertActivations::F32;
  if (!v.IsString()) throw type_error(std::string(fn) + ": spec.activations must be 'f32', 'q8' or 'bf16'");
  return parse_expert_activations(v.ToString().Utf8Value(), std::string(fn) + ": spec.activations");
}

// spec.kvCache: 'f16' | 'bf16' | 'f32' | 'f32k-f16v', or absent for the backend's default (the
// TypeScript side applies GPTOSS_CUDA_KV_CACHE). Checked against the device in Model::set_kv_cache.
std::optional<KvCacheType> kv_cache_arg(const Napi::Object& spec, const char* fn) {
  const Napi::Value v = spec.Get("kvCache");
  if (v.IsUndefined()) return std::nullopt;
  if (!v.IsString()) throw type_error(std::string(fn) + ": spec.kvCache must be 'f16', 'bf16', 'f32' or 'f32k-f16v'");
  return parse_kv_cache(v.ToString().Utf8Value(), std::string(fn) + ": spec.kvCache");
}

// Applies the per-model options a load and a synthetic model share.
void apply_model_options(Model& m, ExpertActivations act, std::optional<KvCacheType> kv_cache) {
  m.set_expert_activations(act);
  if (kv_cache) m.set_kv_cache(*kv_cache);
}

// The optional progress callback (argument 1) as a thread-safe function; null when absent.
std::shared_ptr<Napi::ThreadSafeFunction> progress_tsfn(const Napi::CallbackInfo& info, const char* name) {
  if (info.Length() < 2 || !info[1].IsFunction()) return nullptr;
  return std::shared_ptr<Napi::ThreadSafeFunction>(
      new Napi::ThreadSafeFunction(Napi::ThreadSafeFunction::New(info.Env(), info[1].As<Napi::Function>(), name, 0, 1)),
      [](Napi::ThreadSafeFunction* f) { f->Release(); delete f; });
}

// Bytes done of total, every ~1% and at the end, to the JS callback. The model code calls it from one
// thread at a time.
LoadProgress progress_reporter(std::shared_ptr<Napi::ThreadSafeFunction> tsfn) {
  if (!tsfn) return LoadProgress();
  uint64_t last_reported = 0;
  return [tsfn, last_reported](uint64_t done, uint64_t total) mutable {
    // Report every ~1% (and the end) so the JS side isn't flooded.
    if (done != total && done - last_reported < total / 100) return;
    last_reported = done;
    tsfn->NonBlockingCall([done, total](Napi::Env env, Napi::Function cb) {
      cb.Call({Napi::Number::New(env, double(done)), Napi::Number::New(env, double(total))});
    });
  };
}

class SessionObject;

class ModelObject : public Napi::ObjectWrap<ModelObject> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {StaticMethod<&ModelObject::load>("load"), StaticMethod<&ModelObject::synthetic>("synthetic"),
                        StaticMethod<&ModelObject::synthetic_tensor_data>("syntheticTensor"), InstanceMethod<&ModelObject::info>("info"),
                        InstanceMethod<&ModelObject::dispose>("dispose")});
  }
  explicit ModelObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelObject>(info) {}
  std::shared_ptr<Model> model;

  // NativeModel.load({ config, files, tensors, device }, onProgress?) -> Promise<NativeModel>
  static Napi::Value load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object spec = arg_object(info, 0, "NativeModel.load", "spec");
      ModelConfig config = config_arg(spec, "NativeModel.load");
      if (!spec.Get("files").IsArray()) throw type_error("NativeModel.load: spec.files must be an array of paths");
      Napi::Array fa = spec.Get("files").As<Napi::Array>();
      std::vector<std::string> files;
      for (uint32_t i = 0; i < fa.Length(); ++i) files.push_back(fa.Get(i).ToString().Utf8Value());
      if (files.empty()) throw range_error("NativeModel.load: spec.files is empty");
      if (!spec.Get("tensors").IsArray()) throw type_error("NativeModel.load: spec.tensors must be an array");
      std::vector<TensorRecord> records = parse_records(spec.Get("tensors").As<Napi::Array>(), files.size());
      Device device = device_arg(spec, "NativeModel.load");
      LoadOptions options;
      if (choice_arg(spec, "format", "NativeModel.load", "safetensors", "gguf")) options.format = WeightFormat::Gguf;
      options.dense_q8 = choice_arg(spec, "denseWeights", "NativeModel.load", "as-stored", "q8");
      options.experts_bf16 = choice_arg(spec, "experts", "NativeModel.load", "mxfp4", "bf16");
      const ExpertActivations act = activations_arg(spec, "NativeModel.load");
      const std::optional<KvCacheType> kv = kv_cache_arg(spec, "NativeModel.load");
      return model_promise(env, "gpt-oss-load", progress_tsfn(info, "gpt-oss-load-progress"),
                           [config, files, records, device, options, act, kv](const LoadProgress& progress) {
                             auto m = Model::load(config, files, records, device, progress, options);
                             apply_model_options(*m, act, kv);
                             return m;
                           });
    });
  }

  // NativeModel.synthetic({ config, seed, device }, onProgress?) -> Promise<NativeModel>: random weights
  // generated in memory, the bytes scripts/checkpoint-writer.mjs writes for the same config and seed.
  static Napi::Value synthetic(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object spec = arg_object(info, 0, "NativeModel.synthetic", "spec");
      ModelConfig config = config_arg(spec, "NativeModel.synthetic");
      uint64_t seed = seed_arg(spec, "NativeModel.synthetic");
      Device device = device_arg(spec, "NativeModel.synthetic");
      const ExpertActivations act = activations_arg(spec, "NativeModel.synthetic");
      const bool dense_q8 = choice_arg(spec, "denseWeights", "NativeModel.synthetic", "as-stored", "q8");
      const bool experts_bf16 = choice_arg(spec, "experts", "NativeModel.synthetic", "mxfp4", "bf16");
      const std::optional<KvCacheType> kv = kv_cache_arg(spec, "NativeModel.synthetic");
      return model_promise(env, "gpt-oss-synthetic", progress_tsfn(info, "gpt-oss-synthetic-progress"),
                           [config, seed, device, act, kv, dense_q8, experts_bf16](const LoadProgress& progress) {
                             auto m = Model::synthetic(config, seed, device, progress, dense_q8, experts_bf16);
                             apply_model_options(*m, act, kv);
                             return m;
                           });
    });
  }

  // NativeModel.syntheticTensor({ config, seed }, name, chunkWords) -> ArrayBuffer: one synthetic tensor's
  // bytes, generated in pieces of chunkWords stream words (tests compare them with the writer's).
  static Napi::Value synthetic_tensor_data(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const char* fn = "NativeModel.syntheticTensor";
      Napi::Object spec = arg_object(info, 0, fn, "spec");
      ModelConfig config = config_arg(spec, fn);
      uint64_t seed = seed_arg(spec, fn);
      std::string name = arg_string(info, 1, fn, "name");
      uint64_t chunk = uint64_t(arg_int(info, 2, fn, "chunkWords", 1, int64_t(1) << 40));
      std::vector<uint8_t> bytes = synthetic_tensor(config, seed, name, chunk);
      Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, bytes.size());
      if (!bytes.empty()) std::memcpy(out.Data(), bytes.data(), bytes.size());
      return out;
    });
  }

  // Runs make(progress) on libuv's thread pool; the promise resolves to a NativeModel holding the result.
  static Napi::Value model_promise(Napi::Env env, const char* name, std::shared_ptr<Napi::ThreadSafeFunction> tsfn,
                                   std::function<std::shared_ptr<Model>(const LoadProgress&)> make) {
    auto result = std::make_shared<std::shared_ptr<Model>>();
    auto worker = new PromiseWorker(
        env, name, [=]() { *result = make(progress_reporter(tsfn)); },
        [result, tsfn](Napi::Env env) -> Napi::Value {
          Napi::Object o = addon_data(env).model_class.New({});
          ModelObject::Unwrap(o)->model = *result;
          return o;
        });
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  }

  Model& get(const char* fn) {
    if (!model) throw runtime_error(std::string(fn) + ": the model was disposed");
    return *model;
  }

  Napi::Value info(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Model& m = get("Model.info");
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("backend", m.backend().describe());
      o.Set("device", m.backend().device().str());
      o.Set("weightBytes", double(m.weight_bytes()));
      o.Set("activations", expert_activations_name(m.expert_activations()));
      o.Set("kvCache", kv_cache_name(m.kv_cache()));
      const LoadReport& r = m.load_report();
      Napi::Array groups = Napi::Array::New(info.Env(), r.groups.size());
      for (size_t i = 0; i < r.groups.size(); ++i) {
        const LoadGroup& g = r.groups[i];
        Napi::Object go = Napi::Object::New(info.Env());
        go.Set("group", g.group);
        go.Set("fileDtype", g.file_dtypes);
        go.Set("dtype", g.memory_dtypes);
        go.Set("fileBytes", double(g.file_bytes));
        go.Set("memoryBytes", double(g.memory_bytes));
        go.Set("convertedBytes", double(g.converted_bytes));
        groups.Set(uint32_t(i), go);
      }
      o.Set("groups", groups);
      Napi::Array conv = Napi::Array::New(info.Env(), r.conversions.size());
      for (size_t i = 0; i < r.conversions.size(); ++i) conv.Set(uint32_t(i), r.conversions[i]);
      o.Set("conversions", conv);
      o.Set("convertSeconds", r.convert_seconds);
      o.Set("readWaitSeconds", r.read_wait_seconds);
      o.Set("pageInSeconds", r.page_in_seconds);
      return o;
    });
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    model.reset();  // sessions keep their own reference until they are disposed too
    return info.Env().Undefined();
  }
};

class SessionObject : public Napi::ObjectWrap<SessionObject> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeSession",
                       {InstanceMethod<&SessionObject::forward>("forward"), InstanceMethod<&SessionObject::sample>("sample"),
                        InstanceMethod<&SessionObject::logprobs>("logprobs"),
                        InstanceMethod<&SessionObject::step>("step"),
                        InstanceMethod<&SessionObject::step_many>("stepMany"),
                        InstanceMethod<&SessionObject::truncate>("truncate"), InstanceMethod<&SessionObject::dispose>("dispose"),
                        InstanceAccessor<&SessionObject::length>("length"),
                        InstanceAccessor<&SessionObject::max_context>("maxContext")});
  }

  // new NativeSession(model: NativeModel, maxContext: number)
  explicit SessionObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionObject>(info) {
    guarded(info.Env(), [&] {
      std::shared_ptr<Model> model = model_arg(info, 0, "new Session", "model");
      int max_context = int(arg_int(info, 1, "new Session", "maxContext", 1, 1 << 30));
      session = std::make_shared<Session>(model, max_context);
    });
  }

  std::shared_ptr<Session> session;
  std::shared_ptr<std::atomic<int>> busy = std::make_shared<std::atomic<int>>(0);
  // The session's length as this (main) thread sees it: a pass in flight owns the Session and moves
  // its length on libuv's thread, so JS reads this copy, taken when each pass settles (and by
  // truncate). Reading Session::length() here during a pass was a data race (ThreadSanitizer, a
  // progress display reading session.length while a step runs: scripts/tsan-stress.mjs). Shared with
  // the pass's settle callback, which may run after this object is collected.
  std::shared_ptr<int> seen_length = std::make_shared<int>(0);

  Session& get(const char* fn) {
    if (!session) throw runtime_error(std::string(fn) + ": the session was disposed");
    return *session;
  }
  void not_busy(const char* fn) {
    if (busy->load()) throw runtime_error(std::string(fn) + ": a forward pass of this session is still running; await it first");
  }

  // forward(tokens: Int32Array, mode: 'all' | 'last' | 'none') -> Promise<Float32Array | undefined>
  Napi::Value forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      get("Session.forward");
      not_busy("Session.forward");
      if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw type_error("Session.forward: argument 'tokens' must be an Int32Array");
      auto arr = info[0].As<Napi::Int32Array>();
      auto tokens = std::make_shared<std::vector<int32_t>>(arr.Data(), arr.Data() + arr.ElementLength());
      std::string mode_s = info.Length() > 1 && !info[1].IsUndefined() ? arg_string(info, 1, "Session.forward", "mode") : "last";
      LogitsMode mode;
      if (mode_s == "all") mode = LogitsMode::All;
      else if (mode_s == "last") mode = LogitsMode::Last;
      else if (mode_s == "none") mode = LogitsMode::None;
      else throw range_error("Session.forward: argument 'mode' must be 'all', 'last' or 'none', got '" + mode_s + "'");
      if (tokens->empty()) throw range_error("Session.forward: argument 'tokens' is empty");
      const size_t vocab = size_t(session->model().config().vocab_size);
      size_t rows = mode == LogitsMode::All ? tokens->size() : (mode == LogitsMode::Last ? 1 : 0);
      auto logits = std::make_shared<std::vector<float>>();
      return run_busy(
          env, "gpt-oss-forward",
          [tokens, logits, mode, rows, vocab](Session& s) {
            logits->resize(rows * vocab);
            s.forward(tokens->data(), int(tokens->size()), mode, logits->data());
          },
          [logits, mode](Napi::Env env) -> Napi::Value {
            if (mode == LogitsMode::None) return env.Undefined();
            auto out = Napi::Float32Array::New(env, logits->size());
            std::memcpy(out.Data(), logits->data(), logits->size() * sizeof(float));
            return out;
          });
    });
  }

  static void sample_params(const Napi::CallbackInfo& info, size_t i, const char* fn, SampleParams& p) {
    p = sample_params_arg(arg_object(info, i, fn, "params"), fn);
  }
  // (params, uniform) at argument index i: sample() and step().
  static void sample_args(const Napi::CallbackInfo& info, size_t i, const char* fn, SampleParams& p, float& u) {
    sample_params(info, i, fn, p);
    u = float(arg_number(info, i + 1, fn, "uniform"));
    if (!(u >= 0 && u < 1)) throw range_error(std::string(fn) + ": uniform must be in [0, 1)");
  }

  // Runs work(session) off the main thread with the session marked busy until the pass settles; `done`
  // builds the promise's value on the main thread. Every async session call goes through here.
  Napi::Value run_busy(Napi::Env env, const char* name, std::function<void(Session&)> work, PromiseWorker::Done done) {
    std::shared_ptr<Session> s = session;
    auto worker = new PromiseWorker(env, name, [s, work]() { work(*s); }, std::move(done));
    // On the main thread once the pass is over, before its promise settles: the length JS sees moves,
    // and only then may the next call start (were busy cleared at the end of the work, a call made
    // before this ran could start a pass that moves the length while this reads it).
    worker->on_settle([s, busy_flag = busy, seen = seen_length](bool) {
      *seen = s->length();
      busy_flag->store(0);
    });
    busy->store(1);
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  }

  // run_busy for the calls that resolve to a token id.
  Napi::Value token_promise(Napi::Env env, const char* name, std::function<int32_t(Session&)> work) {
    auto token = std::make_shared<int32_t>(0);
    return run_busy(
        env, name, [work, token](Session& s) { *token = work(s); },
        [token](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *token); });
  }

  // sample({ temperature, topK, topP, minP }, uniform, bias?: { ids, deltas }) -> Promise<number>
  Napi::Value sample(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Session& sess = get("Session.sample");
      not_busy("Session.sample");
      SampleParams p;
      float u;
      sample_args(info, 0, "Session.sample", p, u);
      auto bias = std::make_shared<LogitBias>(logit_bias_arg(info[2], "Session.sample: argument 'bias'", sess.model().config().vocab_size));
      return token_promise(info.Env(), "gpt-oss-sample", [p, u, bias](Session& s) { return s.sample(p, u, bias.get()); });
    });
  }

  // logprobs(id, top) -> Promise<{ logprob, topIds, topLogprobs }>: the log-softmax of the last logits
  // row (the one sample() and step() draw from) at id and at its `top` (0..20) most likely ids.
  Napi::Value logprobs(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const char* fn = "Session.logprobs";
      Session& sess = get(fn);
      not_busy(fn);
      const int32_t id = int32_t(arg_int(info, 0, fn, "id", 0, sess.model().config().vocab_size - 1));
      const int top = int(arg_int(info, 1, fn, "top", 0, kMaxTopLogprobs));
      auto out = std::make_shared<TokenLogprobs>();
      return run_busy(
          info.Env(), "gpt-oss-logprobs", [id, top, out](Session& s) { *out = s.logprobs(id, top); },
          [out](Napi::Env env) -> Napi::Value { return logprobs_to_js(env, *out); });
    });
  }

  // step(token, { temperature, topK, topP, minP }, uniform, bias?: { ids, deltas }) -> Promise<number>: append + sample.
  Napi::Value step(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Session& sess = get("Session.step");
      not_busy("Session.step");
      int32_t token = int32_t(arg_int(info, 0, "Session.step", "token", 0, INT32_MAX));
      SampleParams p;
      float u;
      sample_args(info, 1, "Session.step", p, u);
      auto bias = std::make_shared<LogitBias>(logit_bias_arg(info[3], "Session.step: argument 'bias'", sess.model().config().vocab_size));
      return token_promise(info.Env(), "gpt-oss-step", [token, p, u, bias](Session& s) { return s.step(token, p, u, bias.get()); });
    });
  }

  // stepMany(token, { temperature, topK, topP, minP }, uniforms: Float64Array, stops: Int32Array)
  //   -> Promise<Int32Array>: uniforms.length step() calls in one native call, stopping after a drawn
  //   id in stops (Session::step_many; the ids stay on the device between steps).
  Napi::Value step_many(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Session& sess = get("Session.stepMany");
      not_busy("Session.stepMany");
      const char* fn = "Session.stepMany";
      const int32_t token = int32_t(arg_int(info, 0, fn, "token", 0, INT32_MAX));
      SampleParams p;
      sample_params(info, 1, fn, p);
      if (info.Length() < 3 || !info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
        throw type_error("Session.stepMany: argument 'uniforms' must be a Float64Array");
      auto ua = info[2].As<Napi::Float64Array>();
      if (ua.ElementLength() < 1) throw range_error("Session.stepMany: argument 'uniforms' is empty (one a step)");
      if (int64_t(sess.length()) + int64_t(ua.ElementLength()) > sess.max_context())
        throw range_error("Session.stepMany: " + std::to_string(sess.length()) + " cached + " +
                          std::to_string(ua.ElementLength()) + " steps exceed maxContext " + std::to_string(sess.max_context()));
      auto uniforms = std::make_shared<std::vector<float>>(ua.ElementLength());
      for (size_t i = 0; i < ua.ElementLength(); ++i) {
        const double u = ua[i];
        if (!(u >= 0 && u < 1)) throw range_error("Session.stepMany: uniforms[" + std::to_string(i) + "] must be in [0, 1)");
        (*uniforms)[i] = float(u);
      }
      auto stops = std::make_shared<std::vector<int32_t>>();
      if (info.Length() > 3 && !info[3].IsUndefined()) {
        if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
          throw type_error("Session.stepMany: argument 'stops' must be an Int32Array");
        auto sa = info[3].As<Napi::Int32Array>();
        stops->assign(sa.Data(), sa.Data() + sa.ElementLength());
      }
      auto out = std::make_shared<std::vector<int32_t>>();
      return run_busy(
          env, "gpt-oss-step-many",
          [token, p, uniforms, stops, out](Session& s) {
            *out = s.step_many(token, int(uniforms->size()), p, uniforms->data(), *stops);
          },
          [out](Napi::Env env) -> Napi::Value {
            auto arr = Napi::Int32Array::New(env, out->size());
            std::copy(out->begin(), out->end(), arr.Data());
            return arr;
          });
    });
  }

  Napi::Value truncate(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Session& s = get("Session.truncate");
      not_busy("Session.truncate");
      s.truncate(int(arg_int(info, 0, "Session.truncate", "length", 0, s.length())));
      *seen_length = s.length();
      return info.Env().Undefined();
    });
  }

  Napi::Value length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), session ? *seen_length : 0);
  }
  Napi::Value max_context(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), session ? session->max_context() : 0);
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    session.reset();  // a forward in flight holds its own reference and finishes first
    return info.Env().Undefined();
  }
};

}  // namespace

std::shared_ptr<Model> model_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value m = info.Length() > i ? info[i] : info.Env().Undefined();
  if (!m.IsObject() || !m.As<Napi::Object>().InstanceOf(addon_data(info.Env()).model_class.Value()))
    throw type_error(std::string(fn) + ": argument '" + name + "' must be a NativeModel");
  ModelObject* mo = ModelObject::Unwrap(m.As<Napi::Object>());
  if (!mo->model) throw runtime_error(std::string(fn) + ": the model was disposed");
  return mo->model;
}

void register_model(Napi::Env env, Napi::Object exports) {
  Napi::Function model = ModelObject::define(env);
  Napi::Function session = SessionObject::define(env);
  addon_data(env).model_class = Napi::Persistent(model);
  addon_data(env).session_class = Napi::Persistent(session);
  exports.Set("NativeModel", model);
  exports.Set("NativeSession", session);
  exports.Set("cudaUnavailableReason", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), cuda_unavailable_reason()); });
  }));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), cuda_device_count()); });
  }));
  exports.Set("hipUnavailableReason", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), hip_unavailable_reason()); });
  }));
  exports.Set("hipDeviceCount", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), hip_device_count()); });
  }));
  exports.Set("hipBuildInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const HipBuildInfo b = hip_build_info();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("built", b.built);
      o.Set("pluginPath", b.plugin_path);
      o.Set("runtime", b.runtime);
      o.Set("runtimeVersion", b.runtime_version);
      o.Set("pluginLoaded", b.plugin_loaded);
      Napi::Array archs = Napi::Array::New(info.Env());
      for (size_t start = 0, i = 0; start < b.archs.size(); start = b.archs.find(',', start) + 1) {
        const size_t end = b.archs.find(',', start);
        archs.Set(uint32_t(i++), b.archs.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
      }
      o.Set("archs", archs);
      o.Set("error", b.error);
      return o;
    });
  }));
}

}  // namespace gptoss::napi
