#include "common.h"

#include <cmath>
#include <utility>

#include "tensor.h"

namespace gptoss::napi {

// The one mapping from a native error to the JS error the user catches.
Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  if (auto* g = dynamic_cast<const Error*>(&e)) {
    switch (g->kind()) {
      case Error::Kind::Type: return Napi::TypeError::New(env, g->what());
      case Error::Kind::Range: return Napi::RangeError::New(env, g->what());
      case Error::Kind::Checkpoint:
      case Error::Kind::Config: {
        AddonData& d = addon_data(env);
        Napi::FunctionReference& cls = g->kind() == Error::Kind::Checkpoint ? d.checkpoint_error : d.config_error;
        if (cls.IsEmpty()) return Napi::Error::New(env, g->what());  // the addon used without lib/
        Napi::Value subject = g->subject().empty() ? env.Undefined() : Napi::String::New(env, g->subject());
        Napi::Object err = cls.New({Napi::String::New(env, g->file()), Napi::String::New(env, g->detail()), subject});
        return Napi::Error(env, err);
      }
      default: return Napi::Error::New(env, g->what());
    }
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) return Napi::Error::New(env, "gpt-oss-node: out of host memory");
  return Napi::Error::New(env, std::string("gpt-oss-node: ") + e.what());
}

void rethrow_as_js(Napi::Env env, const std::exception& e) { throw to_js_error(env, e); }

static std::string where(const char* fn, const char* name) {
  return std::string(fn) + ": argument '" + name + "'";
}

static Napi::Value arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = arg(info, i);
  if (!v.IsNumber()) throw type_error(where(fn, name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw range_error(where(fn, name) + " must be finite, got " + std::to_string(d));
  return d;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t lo, int64_t hi) {
  double d = arg_number(info, i, fn, name);
  if (d != std::floor(d)) throw type_error(where(fn, name) + " must be an integer, got " + std::to_string(d));
  if (d < double(lo) || d > double(hi))
    throw range_error(where(fn, name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                      std::to_string(int64_t(d)));
  return int64_t(d);
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = arg(info, i);
  if (!v.IsBoolean()) throw type_error(where(fn, name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = arg(info, i);
  if (!v.IsString()) throw type_error(where(fn, name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = arg(info, i);
  if (!v.IsObject()) throw type_error(where(fn, name) + " must be an object");
  return v.As<Napi::Object>();
}

Shape to_shape(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsArray()) throw type_error(what + " must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) throw range_error(what + " has " + std::to_string(a.Length()) + " dimensions (at most 8)");
  Shape s;
  double total = 1;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) throw type_error(what + "[" + std::to_string(i) + "] must be a number");
    double x = d.As<Napi::Number>().DoubleValue();
    if (!(x >= 0) || x != std::floor(x) || x > double(1LL << 40))
      throw range_error(what + "[" + std::to_string(i) + "] must be a non-negative integer, got " + std::to_string(x));
    s.push_back(int64_t(x));
    total *= x;
  }
  if (total > double(1LL << 40)) throw range_error(what + " " + shape_str(s) + " has too many elements");
  return s;
}

Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return to_shape(info.Env(), arg(info, i), where(fn, name));
}

Device parse_device(const std::string& s, const std::string& what) {
  const std::string expected = " (expected cpu, cuda, cuda:N, hip or hip:N)";
  if (s == "cpu") return Device{DeviceKind::CPU, 0};
  for (const auto& [name, kind] : {std::pair<std::string, DeviceKind>{"cuda", DeviceKind::CUDA}, {"hip", DeviceKind::HIP}}) {
    if (s == name) return Device{kind, 0};
    const size_t n = name.size() + 1;  // "cuda:" / "hip:"
    if (s.rfind(name + ":", 0) != 0 || s.size() == n || s.size() > n + 3) continue;
    int idx = 0;
    for (size_t i = n; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') throw range_error(what + ": unknown device '" + s + "'" + expected);
      idx = idx * 10 + (s[i] - '0');
    }
    return Device{kind, idx};
  }
  throw range_error(what + ": unknown device '" + s + "'" + expected);
}

DType parse_dtype(const std::string& s, const std::string& what) {
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  if (s == "i32") return DType::I32;
  if (s == "u8") return DType::U8;
  if (s == "mxfp4") return DType::MXFP4;
  if (s == "mxfp4-ggml") return DType::MXFP4_GGML;
  if (s == "q8_0") return DType::Q8_0;
  if (s == "f16") return DType::F16;
  throw range_error(what + ": unknown dtype '" + s + "' (expected f32, bf16, f16, i32, u8, mxfp4, mxfp4-ggml or q8_0)");
}

Napi::Array shape_to_js(Napi::Env env, const Shape& s) {
  Napi::Array a = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(s[i])));
  return a;
}

int get_int_field(Napi::Object o, const char* key, const std::string& what, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw type_error(what + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < double(lo) || d > double(hi))
    throw range_error(what + "." + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int(d);
}

double get_num_field(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw type_error(what + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw range_error(what + "." + key + " must be finite");
  return d;
}

SampleParams sample_params_arg(Napi::Object o, const char* fn) {
  const std::string w = std::string(fn) + " params";
  SampleParams p;
  p.temperature = float(get_num_field(o, "temperature", w));
  p.top_k = get_int_field(o, "topK", w, 0, 1 << 30);
  p.top_p = float(get_num_field(o, "topP", w));
  p.min_p = float(get_num_field(o, "minP", w));
  if (p.temperature < 0) throw range_error(std::string(fn) + ": temperature must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw range_error(std::string(fn) + ": topP must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw range_error(std::string(fn) + ": minP must be in [0, 1]");
  return p;
}

LogitBias logit_bias_arg(Napi::Value v, const std::string& what, int64_t vocab) {
  LogitBias b;
  if (v.IsUndefined() || v.IsNull()) return b;
  if (!v.IsObject()) throw type_error(what + " must be { ids: Int32Array, deltas: Float32Array, allow?: Uint32Array }");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value av = o.Get("allow");
  if (!av.IsUndefined() && !av.IsNull()) {
    if (!av.IsTypedArray() || av.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw type_error(what + ".allow must be a Uint32Array (a bitset of the ids a draw may take)");
    auto a = av.As<Napi::Uint32Array>();
    const size_t words = size_t((vocab + 31) / 32);
    if (a.ElementLength() != words)
      throw range_error(what + ".allow must have " + std::to_string(words) + " words (one bit an id), got " + std::to_string(a.ElementLength()));
    bool any = false;
    for (size_t w = 0; w < words && !any; ++w) any = (w + 1 < words ? a[w] : a[w] & (vocab % 32 ? (1u << (vocab % 32)) - 1 : ~0u)) != 0;
    if (!any) throw range_error(what + ".allow allows no id: nothing could be drawn");
    b.allow.assign(a.Data(), a.Data() + words);
  }
  Napi::Value iv = o.Get("ids"), dv = o.Get("deltas");
  if (!iv.IsTypedArray() || iv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw type_error(what + ".ids must be an Int32Array");
  if (!dv.IsTypedArray() || dv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw type_error(what + ".deltas must be a Float32Array");
  auto ids = iv.As<Napi::Int32Array>();
  auto deltas = dv.As<Napi::Float32Array>();
  if (ids.ElementLength() != deltas.ElementLength())
    throw range_error(what + ": ids and deltas differ in length (" + std::to_string(ids.ElementLength()) + " and " +
                      std::to_string(deltas.ElementLength()) + ")");
  for (size_t j = 0; j < ids.ElementLength(); ++j) {
    if (ids[j] < 0 || ids[j] >= vocab)
      throw range_error(what + ".ids[" + std::to_string(j) + "] = " + std::to_string(ids[j]) + " is outside the vocabulary [0, " +
                        std::to_string(vocab) + ")");
    if (!std::isfinite(deltas[j])) throw range_error(what + ".deltas[" + std::to_string(j) + "] is not finite");
  }
  b.ids.assign(ids.Data(), ids.Data() + ids.ElementLength());
  b.deltas.assign(deltas.Data(), deltas.Data() + deltas.ElementLength());
  return b;
}

Napi::Object logprobs_to_js(Napi::Env env, const TokenLogprobs& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("logprob", Napi::Number::New(env, t.logprob));
  auto ids = Napi::Int32Array::New(env, t.top_ids.size());
  std::copy(t.top_ids.begin(), t.top_ids.end(), ids.Data());
  auto lps = Napi::Float32Array::New(env, t.top_logprobs.size());
  std::copy(t.top_logprobs.begin(), t.top_logprobs.end(), lps.Data());
  o.Set("topIds", ids);
  o.Set("topLogprobs", lps);
  return o;
}

}  // namespace gptoss::napi
