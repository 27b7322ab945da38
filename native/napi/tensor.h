// The JS class `Tensor` (native side): a gptoss::Tensor on some device, created from TypedArrays
// and read back into them. Every other napi/ file takes tensors through TensorObject::unwrap.
#pragma once
#include <napi.h>

#include <memory>

#include "core/tensor.h"

namespace gptoss {
class Model;
}

namespace gptoss::napi {

class TensorObject : public Napi::ObjectWrap<TensorObject> {
 public:
  static Napi::Function define(Napi::Env env);
  // A new JS Tensor owning (a reference to) t.
  static Napi::Object wrap(Napi::Env env, Tensor t);
  // The tensor behind a JS value; TypeError naming `fn`/`name` when it is not a live Tensor.
  static Tensor& unwrap(Napi::Value v, const char* fn, const char* name);

  explicit TensorObject(const Napi::CallbackInfo& info);
  Tensor tensor;

 private:
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value nbytes(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);         // -> ArrayBuffer copy of data
  Napi::Value read_scales(const Napi::CallbackInfo& info);  // -> ArrayBuffer copy of MXFP4 scales
  Napi::Value to(const Napi::CallbackInfo& info);           // (device: string) -> Tensor
  Napi::Value dispose(const Napi::CallbackInfo& info);
};

// Per-context state (the addon is context-aware: one instance per Node environment / worker).
struct AddonData {
  Napi::FunctionReference tensor_class;
  Napi::FunctionReference model_class;
  Napi::FunctionReference session_class;
  // lib/errors.ts CheckpointError(file, message, tensor?) and ConfigError(file, message, field?),
  // set by setErrorClasses() when lib/native.ts loads the addon (per environment, as every class here).
  Napi::FunctionReference checkpoint_error;
  Napi::FunctionReference config_error;
};
AddonData& addon_data(Napi::Env env);

// Registration hooks called from addon.cpp, one per napi/ file.
void register_tensor(Napi::Env env, Napi::Object exports);
void register_ops(Napi::Env env, Napi::Object exports);
void register_model(Napi::Env env, Napi::Object exports);
void register_batch(Napi::Env env, Napi::Object exports);

// The live model behind a NativeModel argument (model.cpp); TypeError naming fn/name otherwise.
std::shared_ptr<Model> model_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);

}  // namespace gptoss::napi
