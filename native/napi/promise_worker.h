// PromiseWorker: N-API async work that settles a Promise. Every napi/ call that runs the model goes
// through it, so the work runs on libuv's thread pool and the event loop never waits for it.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <new>
#include <string>

#include "common.h"

namespace gptoss::napi {

// Runs `work` off the main thread; `done` builds the resolved value on the main thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  PromiseWorker(Napi::Env env, const char* name, Work work, Done done)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), done_(std::move(done)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  // Runs on the main thread when the work is over (ok: it did not throw), before the promise settles;
  // also when the environment is being torn down. Must not throw.
  void on_settle(std::function<void(bool ok)> settle) { settle_ = std::move(settle); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const Error& e) {
      error_ = std::make_unique<Error>(e);
    } catch (const std::bad_alloc&) {
      error_ = std::make_unique<Error>(runtime_error("gpt-oss-node: out of host memory"));
    } catch (const std::exception& e) {
      error_ = std::make_unique<Error>(runtime_error(std::string("gpt-oss-node: ") + e.what()));
    }
  }
  // Replaces AsyncWorker's completion so that nothing can throw out of it: when the environment is
  // being torn down (a worker_thread terminated mid-forward) creating handles or settling the
  // promise fails, and an exception escaping here would abort the whole process.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (settle_) settle_(status != napi_cancelled && !error_);
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(env);
        if (!error_) {
          try {
            deferred_.Resolve(done_(env));
          } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
          } catch (const std::exception& e) {
            deferred_.Reject(to_js_error(env, e).Value());
          }
        } else {
          deferred_.Reject(to_js_error(env, *error_).Value());
        }
      } catch (...) {
        // The environment is gone: nobody is waiting for this promise any more.
      }
    }
    delete this;
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::function<void(bool)> settle_;
  std::unique_ptr<Error> error_;  // set by Execute on failure
};

}  // namespace gptoss::napi
