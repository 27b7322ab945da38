// JS class NativeBatch: a Batch (model/batch.h), the native side of lib/engine/native-backend.ts.
// open/close/freeBlocks run on the main thread (bookkeeping only); step() checks its items here,
// marks their sequences busy and runs the forward pass on libuv's thread pool.
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>

#include "common.h"
#include "model/batch.h"
#include "promise_worker.h"
#include "tensor.h"

namespace gptoss::napi {

namespace {

class BatchObject : public Napi::ObjectWrap<BatchObject> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeBatch",
                       {InstanceMethod<&BatchObject::open>("open"), InstanceMethod<&BatchObject::close>("close"),
                        InstanceMethod<&BatchObject::free_blocks>("freeBlocks"),
                        InstanceMethod<&BatchObject::length>("length"), InstanceMethod<&BatchObject::step>("step"),
                        InstanceMethod<&BatchObject::step_logits>("stepLogits"),
                        InstanceMethod<&BatchObject::step_logprobs>("stepLogprobs"),
                        InstanceMethod<&BatchObject::dispose>("dispose"),
                        InstanceAccessor<&BatchObject::block_size>("blockSize"),
                        InstanceAccessor<&BatchObject::total_blocks>("totalBlocks"),
                        InstanceAccessor<&BatchObject::open_sequences>("openSequences"),
                        InstanceAccessor<&BatchObject::cached_blocks>("cachedBlocks"),
                        InstanceAccessor<&BatchObject::pipelines_decode>("pipelinesDecode"),
                        InstanceAccessor<&BatchObject::queued_ahead>("queuedAhead"),
                        InstanceAccessor<&BatchObject::pipeline_stats>("pipelineStats")});
  }

  // new NativeBatch(model: NativeModel, { maxSequences, kvBlocks, blockSize, padDecodeSteps?, pipelineDecode? })
  explicit BatchObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BatchObject>(info) {
    guarded(info.Env(), [&] {
      const char* fn = "createBatchBackend";
      std::shared_ptr<Model> model = model_arg(info, 0, fn, "model");
      Napi::Object o = arg_object(info, 1, fn, "options");
      const std::string w = "createBatchBackend options";
      const int max_sequences = get_int_field(o, "maxSequences", w, 1, 1 << 20);
      const int kv_blocks = get_int_field(o, "kvBlocks", w, 1, 1 << 30);
      const int block_size = get_int_field(o, "blockSize", w, 1, 1 << 16);
      // padDecodeSteps: optional boolean (default: the backend's, Batch::pads_decode_steps)
      int pad = -1;
      const Napi::Value pv = o.Get("padDecodeSteps");
      if (!pv.IsUndefined()) {
        if (!pv.IsBoolean()) throw type_error(w + ": padDecodeSteps must be a boolean");
        pad = pv.As<Napi::Boolean>().Value() ? 1 : 0;
      }
      // pipelineDecode: optional boolean (default false)
      bool pipeline = false;
      const Napi::Value lv = o.Get("pipelineDecode");
      if (!lv.IsUndefined()) {
        if (!lv.IsBoolean()) throw type_error(w + ": pipelineDecode must be a boolean");
        pipeline = lv.As<Napi::Boolean>().Value();
      }
      batch = std::make_shared<Batch>(model, max_sequences, kv_blocks, block_size, pad, pipeline);
    });
  }

  std::shared_ptr<Batch> batch;

  Batch& get(const char* fn) {
    if (!batch) throw runtime_error(std::string(fn) + ": the batch backend was disposed");
    return *batch;
  }

  // open(maxTokens, prompt?: Int32Array) -> number | null (null: the pool or maxSequences cannot take
  // it now); the prompt's cached prefix is shared (length(seq) says how much)
  Napi::Value open(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Batch& b = get("open");
      std::vector<int32_t> prompt;
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
          throw type_error("open: argument 'prompt' must be an Int32Array");
        Napi::Int32Array a = info[1].As<Napi::Int32Array>();
        prompt.assign(a.Data(), a.Data() + a.ElementLength());
      }
      const int seq = b.open(int(arg_int(info, 0, "open", "maxTokens", 1, INT32_MAX)), prompt);
      return seq < 0 ? info.Env().Null() : Napi::Number::New(info.Env(), seq);
    });
  }

  // close(seq): idempotent; a sequence in a running step gives its blocks back when the step ends.
  Napi::Value close(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const int seq = int(arg_int(info, 0, "close", "seq", INT32_MIN, INT32_MAX));
      if (batch) batch->close(seq);
      return info.Env().Undefined();
    });
  }

  Napi::Value free_blocks(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), get("freeBlocks").free_blocks()); });
  }

  Napi::Value length(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Batch& b = get("length");
      return Napi::Number::New(info.Env(), b.length(int(arg_int(info, 0, "length", "seq", INT32_MIN, INT32_MAX))));
    });
  }

  enum class Extra { None, Logits, Logprobs };
  // step(items: { seq, tokens: Int32Array, sample: { options, uniform } | null, next?, logprobs? }[])
  //   -> Promise<Int32Array>
  Napi::Value step(const Napi::CallbackInfo& info) { return queue_step(info, Extra::None); }
  // stepLogits(items) -> Promise<{ ids: Int32Array, logits: Float32Array }>: the same step, and the
  // logits each sampling item drew from ([draws, vocab], in item order), copied back.
  Napi::Value step_logits(const Napi::CallbackInfo& info) { return queue_step(info, Extra::Logits); }
  // stepLogprobs(items) -> Promise<{ ids: Int32Array, logprobs: ({ logprob, topIds, topLogprobs } | null)[] }>:
  // the same step, and per item that sets `logprobs` (0..20 alternatives) its TokenLogprobs.
  Napi::Value step_logprobs(const Napi::CallbackInfo& info) { return queue_step(info, Extra::Logprobs); }

  Napi::Value queue_step(const Napi::CallbackInfo& info, Extra extra) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      std::shared_ptr<Batch> b = batch;
      get("step");
      if (info.Length() < 1 || !info[0].IsArray()) throw type_error("step: argument 'items' must be an array");
      Napi::Array arr = info[0].As<Napi::Array>();
      auto items = std::make_shared<std::vector<StepItem>>(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        const std::string at = "step: items[" + std::to_string(i) + "]";
        Napi::Value v = arr.Get(i);
        if (!v.IsObject()) throw type_error(at + " must be an object { seq, tokens, sample }");
        Napi::Object o = v.As<Napi::Object>();
        StepItem& it = (*items)[i];
        it.seq = get_int_field(o, "seq", at, INT32_MIN, INT32_MAX);
        Napi::Value t = o.Get("tokens");
        if (!t.IsTypedArray() || t.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
          throw type_error(at + ".tokens must be an Int32Array");
        auto ta = t.As<Napi::Int32Array>();
        it.tokens.assign(ta.Data(), ta.Data() + ta.ElementLength());
        Napi::Value sv = o.Get("sample");
        Napi::Value nv = o.Get("next");
        const bool has_next = !nv.IsNull() && !nv.IsUndefined();
        Napi::Value lv = o.Get("logprobs");
        const bool has_logprobs = !lv.IsNull() && !lv.IsUndefined();
        if (has_logprobs) {
          if (extra != Extra::Logprobs) throw type_error(at + ".logprobs is read by stepLogprobs only, not by this call");
          const double k = lv.IsNumber() ? lv.As<Napi::Number>().DoubleValue() : 0.5;
          if (!(k == std::floor(k)))  // not a number, or not an integer
            throw type_error(at + ".logprobs must be an integer in [0, " + std::to_string(kMaxTopLogprobs) + "] (the alternatives to report)");
          if (!(k >= 0 && k <= kMaxTopLogprobs))
            throw range_error(at + ".logprobs must be an integer in [0, " + std::to_string(kMaxTopLogprobs) + "], got " + lv.ToString().Utf8Value());
          it.logprobs = int(k);
        }
        Napi::Value bv = o.Get("bias");
        const bool has_bias = !bv.IsNull() && !bv.IsUndefined();
        if (sv.IsNull() || sv.IsUndefined()) {
          if (has_next) throw type_error(at + ".next is set but .sample is null (next is the uniform of the step after this draw)");
          if (has_logprobs) throw type_error(at + ".logprobs is set but .sample is null (logprobs are those of the draw)");
          if (has_bias) throw type_error(at + ".bias is set but .sample is null (the bias is added for the draw)");
          continue;
        }
        if (has_bias) {
          if (has_next) throw type_error(at + ".bias and .next together: a step queued ahead draws before its bias is known");
          it.bias = logit_bias_arg(bv, at + ".bias", b->model().config().vocab_size);
        }
        if (!sv.IsObject()) throw type_error(at + ".sample must be null or { options, uniform }");
        Napi::Object so = sv.As<Napi::Object>();
        Napi::Value ov = so.Get("options");
        if (!ov.IsObject()) throw type_error(at + ".sample.options must be an object");
        it.sample = true;
        it.params = sample_params_arg(ov.As<Napi::Object>(), (at + ".sample").c_str());
        const double u = get_num_field(so, "uniform", at + ".sample");
        if (!(u >= 0 && u < 1)) throw range_error(at + ".sample.uniform must be in [0, 1), got " + std::to_string(u));
        it.uniform = float(u);
        // A uniform just below 1 would round up to 1.0f, which the sampler rejects.
        if (!(it.uniform < 1.f)) it.uniform = 0.99999994f;
        // next: the uniform of this sequence's next decode step (pipelined decode), converted as uniform is
        if (has_next) {
          if (!nv.IsNumber()) throw type_error(at + ".next must be a number (the next step's uniform)");
          const double un = nv.As<Napi::Number>().DoubleValue();
          if (!(un >= 0 && un < 1)) throw range_error(at + ".next must be in [0, 1), got " + std::to_string(un));
          it.ahead = true;
          it.next_uniform = float(un);
          if (!(it.next_uniform < 1.f)) it.next_uniform = 0.99999994f;
        }
      }
      b->reserve(*items);  // throws (nothing reserved) on a bad item
      auto out = std::make_shared<std::vector<int32_t>>();
      auto logits = extra == Extra::Logits ? std::make_shared<std::vector<float>>() : nullptr;
      auto logprobs = extra == Extra::Logprobs ? std::make_shared<std::vector<TokenLogprobs>>() : nullptr;
      auto worker = new PromiseWorker(
          env, "gpt-oss-batch-step", [b, items, out, logits, logprobs]() { *out = b->run(*items, logits.get(), logprobs.get()); },
          [items, out, logits, logprobs](Napi::Env env) -> Napi::Value {
            auto r = Napi::Int32Array::New(env, out->size());
            std::copy(out->begin(), out->end(), r.Data());
            if (!logits && !logprobs) return r;
            Napi::Object o = Napi::Object::New(env);
            o.Set("ids", r);
            if (logits) {
              auto l = Napi::Float32Array::New(env, logits->size());
              std::copy(logits->begin(), logits->end(), l.Data());
              o.Set("logits", l);
            }
            if (logprobs) {
              Napi::Array a = Napi::Array::New(env, items->size());
              for (size_t i = 0; i < items->size(); ++i)
                a.Set(uint32_t(i), (*items)[i].logprobs >= 0 && (*items)[i].sample ? Napi::Value(logprobs_to_js(env, (*logprobs)[i]))
                                                                                   : env.Null());
              o.Set("logprobs", a);
            }
            return o;
          });
      // The step's effects (tokens appended, busy cleared, blocks of sequences closed meanwhile
      // returned) are seen on the main thread when its promise settles, not before.
      worker->on_settle([b, items](bool ok) { b->settle(*items, ok); });
      Napi::Promise p = worker->promise();
      try {
        worker->Queue();
      } catch (...) {
        b->settle(*items, false);
        throw;
      }
      return p;
    });
  }

  Napi::Value block_size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), batch ? batch->block_size() : 0); }
  Napi::Value total_blocks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), batch ? batch->total_blocks() : 0); }
  Napi::Value open_sequences(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), batch ? batch->open_sequences() : 0);
  }
  Napi::Value pipelines_decode(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), batch && batch->pipelines_decode());
  }
  Napi::Value queued_ahead(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), batch ? batch->queued_ahead() : 0);
  }
  // { queued, claimed, dropped }: decode steps queued ahead, claimed by the next step, dropped
  Napi::Value pipeline_stats(const Napi::CallbackInfo& info) {
    const Batch::PipelineStats s = batch ? batch->pipeline_stats() : Batch::PipelineStats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("queued", Napi::Number::New(info.Env(), double(s.queued)));
    o.Set("claimed", Napi::Number::New(info.Env(), double(s.claimed)));
    o.Set("dropped", Napi::Number::New(info.Env(), double(s.dropped)));
    return o;
  }
  Napi::Value cached_blocks(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), batch ? batch->cached_blocks() : 0);
  }

  // Drops the batch: its pool is freed once a step in flight (which holds its own reference) ends.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    batch.reset();
    return info.Env().Undefined();
  }
};

}  // namespace

void register_batch(Napi::Env env, Napi::Object exports) { exports.Set("NativeBatch", BatchObject::define(env)); }

}  // namespace gptoss::napi
