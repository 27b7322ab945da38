// `ops`: the backend ops one by one, synchronously, for tests and microbenchmarks. Each function
// takes native Tensors (outputs preallocated by the caller) and numbers, checks them, and calls
// get_backend(device)->op. `ops.reference.*` runs the scalar CPU references (cpu/ops.h, ref::).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "common.h"
#include "core/thread_pool.h"
#include "cpu/cpu_features.h"
#include "cpu/ops.h"
#include "model/backend.h"
#include "tensor.h"

namespace gptoss::napi {

namespace {

Tensor& tensor_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return TensorObject::unwrap(i < info.Length() ? info[i] : info.Env().Undefined(), fn, name);
}

// All tensors of one call must live on one device; returns it.
struct DeviceCheck {
  const char* fn;
  bool have = false;
  Device device{};
  void operator()(const Tensor& t, const char* name) {
    if (!have) {
      device = t.device;
      have = true;
    } else if (t.device != device) {
      throw type_error(std::string(fn) + ": argument '" + name + "' is on " + t.device.str() +
                       " but the other tensors are on " + device.str());
    }
  }
};

Napi::Value get_prop(Napi::Object o, const char* key) { return o.Has(key) ? o.Get(key) : o.Env().Undefined(); }

float opt_number(Napi::Object o, const char* key, float dflt, const char* fn) {
  Napi::Value v = get_prop(o, key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw type_error(std::string(fn) + ": option '" + key + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw range_error(std::string(fn) + ": option '" + key + "' must be finite");
  return float(d);
}

Tensor& tensor_prop(Napi::Object o, const char* key, const char* fn) {
  return TensorObject::unwrap(get_prop(o, key), fn, key);
}

// One op's arguments as a table, read in the order given: tensors, an optional tensor (null or
// undefined: absent), finite numbers, integers in [lo, hi]; each error names the op and the argument,
// and the first bad argument is the one reported. Then all its tensors must be on one device (in
// argument order, the optional ones last): device() is that device.
struct ArgSpec {
  enum Kind : uint8_t { Required, Optional, Number, Integer } kind;
  const char* name;
  int64_t lo = 0, hi = 0;
};
constexpr ArgSpec tensor(const char* name) { return {ArgSpec::Required, name}; }
constexpr ArgSpec optional_tensor(const char* name) { return {ArgSpec::Optional, name}; }
constexpr ArgSpec number(const char* name) { return {ArgSpec::Number, name}; }
constexpr ArgSpec integer(const char* name, int64_t lo, int64_t hi) { return {ArgSpec::Integer, name, lo, hi}; }

class OpArgs {
 public:
  OpArgs(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<ArgSpec> specs)
      : specs_(specs), values_(specs.size()) {
    for (size_t i = 0; i < specs_.size(); ++i) {
      const ArgSpec& a = specs_[i];
      Value& v = values_[i];
      switch (a.kind) {
        case ArgSpec::Required: v.tensor = &tensor_arg(info, i, fn, a.name); break;
        case ArgSpec::Optional:
          if (i < info.Length() && !info[i].IsNull() && !info[i].IsUndefined()) v.tensor = &tensor_arg(info, i, fn, a.name);
          break;
        case ArgSpec::Number: v.number = arg_number(info, i, fn, a.name); break;
        case ArgSpec::Integer: v.number = double(arg_int(info, i, fn, a.name, a.lo, a.hi)); break;
      }
    }
    DeviceCheck dc{fn};
    for (ArgSpec::Kind kind : {ArgSpec::Required, ArgSpec::Optional})
      for (size_t i = 0; i < specs_.size(); ++i)
        if (specs_[i].kind == kind && values_[i].tensor) dc(*values_[i].tensor, specs_[i].name);
    device_ = dc.device;
  }
  Tensor& t(const char* name) const { return *at(name).tensor; }
  Tensor* optional(const char* name) const { return at(name).tensor; }
  double num(const char* name) const { return at(name).number; }
  Device device() const { return device_; }

 private:
  struct Value {
    Tensor* tensor = nullptr;
    double number = 0;
  };
  const Value& at(const char* name) const {
    for (size_t i = 0; i < specs_.size(); ++i)
      if (std::strcmp(specs_[i].name, name) == 0) return values_[i];
    throw runtime_error(std::string("gpt-oss-node internal: no argument '") + name + "' in this op's table");
  }
  std::vector<ArgSpec> specs_;
  std::vector<Value> values_;
  Device device_{};
};

// ops.<name> / ops.reference.<name> (ref): reads the arguments `specs`, runs body(args) and returns
// undefined; the body picks the scalar reference (cpu::ref) or the device's backend.
template <typename Body>
Napi::Value run_op(const Napi::CallbackInfo& info, bool ref, const char* name, std::initializer_list<ArgSpec> specs, Body body) {
  const std::string fn = std::string(ref ? "ops.reference." : "ops.") + name;
  return guarded(info.Env(), [&]() -> Napi::Value {
    const OpArgs args(info, fn.c_str(), specs);
    body(args);
    return info.Env().Undefined();
  });
}

// ---- the ops; `ref` selects the scalar reference implementation ----

Napi::Value op_embedding(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "embedding", {tensor("tokens"), tensor("table"), tensor("out")}, [&](const OpArgs& a) {
    if (ref) cpu::ref::embedding(a.t("tokens"), a.t("table"), a.t("out"));
    else get_backend(a.device())->embedding(a.t("tokens"), a.t("table"), a.t("out"));
  });
}

Napi::Value op_rmsnorm(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "rmsnorm", {tensor("x"), tensor("weight"), number("eps"), tensor("out")}, [&](const OpArgs& a) {
    const float eps = float(a.num("eps"));
    if (ref) cpu::ref::rmsnorm(a.t("x"), a.t("weight"), eps, a.t("out"));
    else get_backend(a.device())->rmsnorm(a.t("x"), a.t("weight"), eps, a.t("out"));
  });
}

Napi::Value op_linear(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "linear", {tensor("x"), tensor("weight"), optional_tensor("bias"), tensor("out")}, [&](const OpArgs& a) {
    // The fifth argument, activations: 'f32' (absent) or 'q8' (Q8_0 and MXFP4 weights: integer dots on q8 activations).
    const std::string fn = std::string(ref ? "ops.reference" : "ops") + ".linear";
    ExpertActivations act = ExpertActivations::F32;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      if (!info[4].IsString()) throw type_error(fn + ": activations must be 'f32', 'q8' or 'bf16'");
      act = parse_expert_activations(info[4].ToString().Utf8Value(), fn + ": activations");
    }
    if (act == ExpertActivations::Bf16)  // a mode of the CUDA grouped expert GEMMs (loadModel), not of linear
      throw range_error(fn + ": activations 'bf16' applies to a CUDA model's grouped expert GEMMs (loadModel's activations), not to linear");
    if (ref) {
      cpu::ref::linear(a.t("x"), a.t("weight"), a.optional("bias"), a.t("out"), act);
      return;
    }
    std::shared_ptr<Backend> be = get_backend(a.device());
    if (act == ExpertActivations::Q8 && a.device().kind != DeviceKind::CPU)
      throw range_error(fn + ": activations 'q8' is a CPU mode; device " + a.device().str() + " multiplies f32 activations");
    // The mode is the calling thread's (Backend::set_activations): set for this call, then put back.
    const ExpertActivations before = be->activations();
    be->set_activations(act);
    try {
      be->linear(a.t("x"), a.t("weight"), a.optional("bias"), a.t("out"));
    } catch (...) {
      be->set_activations(before);
      throw;
    }
    be->set_activations(before);
  });
}

Napi::Value op_rope(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "rope", {tensor("x"), tensor("positions"), tensor("invFreq"), number("scale")}, [&](const OpArgs& a) {
    const float scale = float(a.num("scale"));
    if (ref) cpu::ref::rope(a.t("x"), a.t("positions"), a.t("invFreq"), scale);
    else get_backend(a.device())->rope(a.t("x"), a.t("positions"), a.t("invFreq"), scale);
  });
}

Napi::Value op_kv_store(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "kvStore", {tensor("k"), tensor("v"), tensor("positions"), tensor("kCache"), tensor("vCache")},
                [&](const OpArgs& a) {
                  if (ref) cpu::ref::kv_store(a.t("k"), a.t("v"), a.t("positions"), a.t("kCache"), a.t("vCache"));
                  else get_backend(a.device())->kv_store(a.t("k"), a.t("v"), a.t("positions"), a.t("kCache"), a.t("vCache"));
                });
}

Napi::Value op_attention(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "attention",
                {tensor("q"), tensor("kCache"), tensor("vCache"), tensor("sinks"), tensor("positions"),
                 integer("slidingWindow", 0, 1 << 30), number("softmaxScale"), tensor("out")},
                [&](const OpArgs& a) {
                  const int window = int(a.num("slidingWindow"));
                  const float scale = float(a.num("softmaxScale"));
                  if (ref)
                    cpu::ref::attention(a.t("q"), a.t("kCache"), a.t("vCache"), a.t("sinks"), a.t("positions"), window, scale, a.t("out"));
                  else
                    get_backend(a.device())->attention(a.t("q"), a.t("kCache"), a.t("vCache"), a.t("sinks"), a.t("positions"), window,
                                                       scale, a.t("out"));
                });
}

Napi::Value op_paged_attention(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "pagedAttention",
                {tensor("q"), tensor("kCache"), tensor("vCache"), tensor("sinks"), tensor("positions"), tensor("seqOfToken"),
                 tensor("blockTables"), integer("blockSize", 1, 1 << 16), integer("slidingWindow", 0, 1 << 30),
                 number("softmaxScale"), tensor("out")},
                [&](const OpArgs& a) {
                  const int block_size = int(a.num("blockSize")), window = int(a.num("slidingWindow"));
                  const float scale = float(a.num("softmaxScale"));
                  if (ref)
                    cpu::ref::paged_attention(a.t("q"), a.t("kCache"), a.t("vCache"), a.t("sinks"), a.t("positions"), a.t("seqOfToken"),
                                              a.t("blockTables"), block_size, window, scale, a.t("out"));
                  else
                    get_backend(a.device())->paged_attention(a.t("q"), a.t("kCache"), a.t("vCache"), a.t("sinks"), a.t("positions"),
                                                             a.t("seqOfToken"), a.t("blockTables"), block_size, window, scale, a.t("out"));
                });
}

Napi::Value op_router(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "router",
                {tensor("x"), tensor("weight"), tensor("bias"), integer("k", 1, 1 << 20), tensor("expertIdx"), tensor("expertWeight")},
                [&](const OpArgs& a) {
                  const int k = int(a.num("k"));
                  if (ref) cpu::ref::router(a.t("x"), a.t("weight"), a.t("bias"), k, a.t("expertIdx"), a.t("expertWeight"));
                  else get_backend(a.device())->router(a.t("x"), a.t("weight"), a.t("bias"), k, a.t("expertIdx"), a.t("expertWeight"));
                });
}

Napi::Value op_moe(const Napi::CallbackInfo& info, bool ref) {
  const char* fn = ref ? "ops.reference.moe" : "ops.moe";
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& x = tensor_arg(info, 0, fn, "x");
    Tensor& idx = tensor_arg(info, 1, fn, "expertIdx");
    Tensor& wt = tensor_arg(info, 2, fn, "expertWeight");
    Napi::Object wo = arg_object(info, 3, fn, "weights");
    // Hugging Face form {gateUp, gateUpBias, down, downBias}, or GGUF's {gate, gateBias, up, upBias, down, downBias}.
    const bool split = wo.Has("gate");
    MoeWeights w;
    if (split) {
      w.gate = tensor_prop(wo, "gate", fn);
      w.gate_bias = tensor_prop(wo, "gateBias", fn);
      w.up = tensor_prop(wo, "up", fn);
      w.up_bias = tensor_prop(wo, "upBias", fn);
    } else {
      w.gate_up = tensor_prop(wo, "gateUp", fn);
      w.gate_up_bias = tensor_prop(wo, "gateUpBias", fn);
    }
    w.down = tensor_prop(wo, "down", fn);
    w.down_bias = tensor_prop(wo, "downBias", fn);
    if (!wo.Get("activations").IsUndefined()) {
      if (!wo.Get("activations").IsString()) throw type_error(std::string(fn) + ": weights.activations must be 'f32', 'q8' or 'bf16'");
      w.activations = parse_expert_activations(wo.Get("activations").ToString().Utf8Value(),
                                               std::string(fn) + ": weights.activations");
    }
    SwigluParams sw;
    if (info.Length() > 4 && info[4].IsObject()) {
      Napi::Object so = info[4].As<Napi::Object>();
      sw.limit = opt_number(so, "limit", sw.limit, fn);
      sw.alpha = opt_number(so, "alpha", sw.alpha, fn);
    } else if (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull()) {
      throw type_error(std::string(fn) + ": argument 'swiglu' must be an object {limit, alpha}");
    }
    Tensor& out = tensor_arg(info, 5, fn, "out");
    DeviceCheck dc{fn};
    dc(x, "x"), dc(idx, "expertIdx"), dc(wt, "expertWeight"), dc(w.down, "down"), dc(w.down_bias, "downBias"), dc(out, "out");
    if (split)
      dc(w.gate, "gate"), dc(w.gate_bias, "gateBias"), dc(w.up, "up"), dc(w.up_bias, "upBias");
    else
      dc(w.gate_up, "gateUp"), dc(w.gate_up_bias, "gateUpBias");
    if (w.activations == ExpertActivations::Bf16 && (ref || dc.device.kind != DeviceKind::CUDA))
      throw range_error(std::string(fn) + ": weights.activations 'bf16' is a CUDA mode; " +
                        (ref ? std::string("the reference") : "device " + dc.device.str()) + " multiplies f32 or q8 activations");
    if (ref) cpu::ref::moe(x, idx, wt, w, sw, out);
    else get_backend(dc.device)->moe(x, idx, wt, w, sw, out);
    return info.Env().Undefined();
  });
}

Napi::Value op_add(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "add", {tensor("acc"), tensor("x")}, [&](const OpArgs& a) {
    if (ref) cpu::ref::add(a.t("acc"), a.t("x"));
    else get_backend(a.device())->add(a.t("acc"), a.t("x"));
  });
}

Napi::Value op_dequantize(const Napi::CallbackInfo& info, bool ref) {
  return run_op(info, ref, "mxfp4Dequantize", {tensor("packed"), tensor("out")}, [&](const OpArgs& a) {
    if (ref) cpu::ref::mxfp4_dequantize(a.t("packed"), a.t("out"));
    else get_backend(a.device())->mxfp4_dequantize(a.t("packed"), a.t("out"));
  });
}

// The CPU conversions a load applies, one by one (src -> out, both on the CPU):
//   quantizeQ8(src, out): bf16/f16/f32 -> Q8_0, as loadModel's denseWeights: 'q8';
//   quantizeMxfp4(src [E, C, R], out MXFP4 [E, R, C]): transformers' dequantized expert layout -> Hugging
//     Face MXFP4 blocks, as loadModel's experts: 'mxfp4';
//   mxfp4FromGgml(src MXFP4_GGML, out MXFP4): GGUF's expert blocks -> the Hugging Face layout, as a GPU
//     load of a GGUF;
//   transposeExperts(src [E, A, B], out [E, B, A]): transformers' dense experts [E, in, out] <-> the
//     [E, out, in] rows the GPU kernels read, as loading experts: 'bf16' onto CUDA.
struct Conversion {
  const char* name;
  void (*run)(const Tensor& src, Tensor& out);
};
const Conversion kConversions[] = {
    {"quantizeQ8", cpu::quantize_q8_0},
    {"quantizeMxfp4", cpu::quantize_mxfp4_transposed},
    {"mxfp4FromGgml", cpu::mxfp4_from_ggml},
    {"transposeExperts", cpu::transpose_experts},
};

Napi::Value op_convert(const Napi::CallbackInfo& info) {
  const Conversion& c = *static_cast<const Conversion*>(info.Data());
  const std::string fn = std::string("ops.") + c.name;
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& src = tensor_arg(info, 0, fn.c_str(), "src");
    Tensor& out = tensor_arg(info, 1, fn.c_str(), "out");
    checks::placed(src, Device{}, (std::string(c.name) + ": src").c_str());
    checks::placed(out, Device{}, (std::string(c.name) + ": out").c_str());
    c.run(src, out);
    return info.Env().Undefined();
  });
}

Napi::Value op_sample(const Napi::CallbackInfo& info, bool ref) {
  const char* fn = ref ? "ops.reference.sample" : "ops.sample";
  return guarded(info.Env(), [&]() -> Napi::Value {
    Tensor& logits = tensor_arg(info, 0, fn, "logits");
    SampleParams p;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      p.temperature = opt_number(o, "temperature", p.temperature, fn);
      float top_k = opt_number(o, "topK", 0.f, fn);
      if (top_k < 0 || top_k != std::floor(top_k) || top_k > 2e9f)
        throw range_error(std::string(fn) + ": option 'topK' must be a non-negative integer");
      p.top_k = int(top_k);
      p.top_p = opt_number(o, "topP", p.top_p, fn);
      p.min_p = opt_number(o, "minP", p.min_p, fn);
    } else if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      throw type_error(std::string(fn) + ": argument 'params' must be an object");
    }
    float uniform = float(arg_number(info, 2, fn, "uniform"));
    int32_t id = checks::sampled_token(
        ref ? cpu::ref::sample(logits, p, uniform) : get_backend(logits.device)->sample(logits, p, uniform), fn);
    return Napi::Number::New(info.Env(), id);
  });
}

// Read bandwidth of this machine (GB/s): all threads sum a buffer larger than the caches, the same
// way the kernels stream weights. The ceiling the kernel benchmarks compare against.
Napi::Value read_bandwidth(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int64_t mb = info.Length() > 0 ? arg_int(info, 0, "ops.readBandwidth", "megabytes", 16, 1 << 16) : 1024;
    const int64_t reps = info.Length() > 1 ? arg_int(info, 1, "ops.readBandwidth", "repeats", 1, 1000) : 3;
    const int64_t words = mb * (1 << 20) / 8;
    std::vector<uint64_t> buf(static_cast<size_t>(words));
    parallel_for(words, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) buf[static_cast<size_t>(i)] = uint64_t(i) * 2654435761u;
    }, 1 << 16);
    double best = 0;
    std::vector<uint64_t> sinks(256);
    for (int64_t r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      parallel_for(words, [&](int64_t a, int64_t b) {
        uint64_t acc[8] = {};
        int64_t i = a;
        for (; i + 8 <= b; i += 8)
          for (int j = 0; j < 8; ++j) acc[j] ^= buf[static_cast<size_t>(i + j)];
        uint64_t s = 0;
        for (int j = 0; j < 8; ++j) s ^= acc[j];
        sinks[static_cast<size_t>((a / (1 << 16)) % 256)] ^= s;
      }, 1 << 16);
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, double(words) * 8 / sec / 1e9);
    }
    uint64_t keep = 0;
    for (uint64_t s : sinks) keep ^= s;
    if (keep == 0x1234567) best += 0;  // keeps the reads observable
    return Napi::Number::New(info.Env(), best);
  });
}

template <Napi::Value (*F)(const Napi::CallbackInfo&, bool), bool Ref>
Napi::Value bind(const Napi::CallbackInfo& info) {
  return F(info, Ref);
}

template <bool Ref>
void attach(Napi::Env env, Napi::Object o) {
  o.Set("embedding", Napi::Function::New(env, bind<op_embedding, Ref>, "embedding"));
  o.Set("rmsnorm", Napi::Function::New(env, bind<op_rmsnorm, Ref>, "rmsnorm"));
  o.Set("linear", Napi::Function::New(env, bind<op_linear, Ref>, "linear"));
  o.Set("rope", Napi::Function::New(env, bind<op_rope, Ref>, "rope"));
  o.Set("kvStore", Napi::Function::New(env, bind<op_kv_store, Ref>, "kvStore"));
  o.Set("attention", Napi::Function::New(env, bind<op_attention, Ref>, "attention"));
  o.Set("pagedAttention", Napi::Function::New(env, bind<op_paged_attention, Ref>, "pagedAttention"));
  o.Set("router", Napi::Function::New(env, bind<op_router, Ref>, "router"));
  o.Set("moe", Napi::Function::New(env, bind<op_moe, Ref>, "moe"));
  o.Set("add", Napi::Function::New(env, bind<op_add, Ref>, "add"));
  o.Set("mxfp4Dequantize", Napi::Function::New(env, bind<op_dequantize, Ref>, "mxfp4Dequantize"));
  o.Set("sample", Napi::Function::New(env, bind<op_sample, Ref>, "sample"));
}

Napi::Value cpu_info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", cpu::isa_name(cpu::current_isa()));
  o.Set("bestIsa", cpu::isa_name(cpu::best_isa()));
  Napi::Array isas = Napi::Array::New(info.Env());
  for (cpu::Isa isa : cpu::kAllIsas)
    if (cpu::isa_supported(isa)) isas.Set(isas.Length(), cpu::isa_name(isa));
  o.Set("isas", isas);
  o.Set("threads", thread_pool().threads());
  o.Set("adaptive", thread_pool().adaptive());
  Napi::Object jobs = Napi::Object::New(info.Env());
  const ThreadPool::Counts c = thread_pool().counts();
  jobs.Set("parallel", double(c.parallel));
  jobs.Set("inline", double(c.inline_));
  o.Set("poolJobs", jobs);
  return o;
}

Napi::Value set_pool_adaptive(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsBoolean()) throw type_error("ops.setPoolAdaptive: argument 'on' must be a boolean");
    thread_pool().set_adaptive(info[0].As<Napi::Boolean>().Value());
    return Napi::Boolean::New(info.Env(), thread_pool().adaptive());
  });
}

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    int n = int(arg_int(info, 0, "ops.setThreads", "threads", 1, 1024));
    thread_pool().set_threads(n);
    return Napi::Number::New(info.Env(), thread_pool().threads());
  });
}

Napi::Value set_isa(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    std::string s = arg_string(info, 0, "ops.setIsa", "isa");
    cpu::Isa used;
    try {
      used = cpu::set_cpu_isa(cpu::parse_isa(s));
    } catch (const Error& e) {
      throw range_error(std::string("ops.setIsa: argument 'isa' ") + e.what());
    }
    return Napi::String::New(info.Env(), cpu::isa_name(used));
  });
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  attach<false>(env, ops);
  Napi::Object reference = Napi::Object::New(env);
  attach<true>(env, reference);
  ops.Set("reference", reference);
  ops.Set("cpuInfo", Napi::Function::New(env, cpu_info, "cpuInfo"));
  ops.Set("setThreads", Napi::Function::New(env, set_threads, "setThreads"));
  ops.Set("setPoolAdaptive", Napi::Function::New(env, set_pool_adaptive, "setPoolAdaptive"));
  ops.Set("setIsa", Napi::Function::New(env, set_isa, "setIsa"));
  for (const Conversion& c : kConversions)
    ops.Set(c.name, Napi::Function::New(env, op_convert, c.name, const_cast<Conversion*>(&c)));
  ops.Set("readBandwidth", Napi::Function::New(env, read_bandwidth, "readBandwidth"));
  exports.Set("ops", ops);
}

}  // namespace gptoss::napi
