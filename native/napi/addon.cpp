// Module entry. The addon is context-aware: all per-environment state lives in AddonData, set as the
// environment's instance data, so it loads in worker_threads and in several contexts at once.
#include <napi.h>

#include "common.h"
#include "tensor.h"

namespace gptoss::napi {

AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  register_tensor(env, exports);
  register_ops(env, exports);
  register_model(env, exports);
  register_batch(env, exports);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  // setErrorClasses({ CheckpointError, ConfigError }): the classes native errors of those kinds are
  // constructed as (better-sqlite3 hands its SqliteError over the same way).
  exports.Set("setErrorClasses", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = arg_object(info, 0, "setErrorClasses", "classes");
      for (const char* key : {"CheckpointError", "ConfigError"})
        if (!o.Get(key).IsFunction()) throw type_error(std::string("setErrorClasses: classes.") + key + " must be a class");
      AddonData& d = addon_data(info.Env());
      d.checkpoint_error = Napi::Persistent(o.Get("CheckpointError").As<Napi::Function>());
      d.config_error = Napi::Persistent(o.Get("ConfigError").As<Napi::Function>());
      return info.Env().Undefined();
    });
  }));
  return exports;
}

}  // namespace gptoss::napi

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return gptoss::napi::init(env, exports); }

NODE_API_MODULE(gpt_oss_node, InitAddon)
