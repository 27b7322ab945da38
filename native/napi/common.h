// Shared by every napi/ file: argument checks that throw JS TypeError/RangeError with the argument's
// name, and the translation of gptoss::Error (and any std::exception) into a JS exception.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "model/backend.h"
#include "model/logit_bias.h"
#include "model/logprobs.h"

namespace gptoss::napi {

// Throws the JS error matching e's kind (as a Napi::Error, caught by node-addon-api at the boundary).
[[noreturn]] void rethrow_as_js(Napi::Env env, const std::exception& e);
Napi::Error to_js_error(Napi::Env env, const std::exception& e);

// Wrap a callback body: C++ exceptions become JS exceptions, never a crash.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_as_js(env, e);
  }
}

// Argument readers: `name` appears in the error message ("rmsnorm: argument 'eps' must be a number").
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t lo, int64_t hi);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
Shape to_shape(Napi::Env env, Napi::Value v, const std::string& what);
Device parse_device(const std::string& s, const std::string& what);  // "cpu", "cuda", "cuda:N", "hip", "hip:N"
DType parse_dtype(const std::string& s, const std::string& what);    // "f32", "bf16", "i32", "u8", "mxfp4"
Napi::Array shape_to_js(Napi::Env env, const Shape& s);
// Fields of an options object: `what` names the object in errors ("config.vocabSize must be a number").
int get_int_field(Napi::Object o, const char* key, const std::string& what, int64_t lo, int64_t hi);
double get_num_field(Napi::Object o, const char* key, const std::string& what);
// { temperature, topK, topP, minP } as the native sampler takes them, range-checked (fn names the call).
SampleParams sample_params_arg(Napi::Object o, const char* fn);
// A logit bias as JS passes it: undefined / null (none) or { ids: Int32Array, deltas: Float32Array } of one
// length, ids in [0, vocab), deltas finite, and optionally allow: Uint32Array (ceil(vocab / 32) words, some
// bit set); `what` names it in errors ("step: items[2].bias").
LogitBias logit_bias_arg(Napi::Value v, const std::string& what, int64_t vocab);
// TokenLogprobs as JS sees them: { logprob: number, topIds: Int32Array, topLogprobs: Float32Array }.
Napi::Object logprobs_to_js(Napi::Env env, const TokenLogprobs& t);

}  // namespace gptoss::napi
