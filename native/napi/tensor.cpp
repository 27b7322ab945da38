#include "tensor.h"

#include <cstring>

#include "common.h"
#include "model/backend.h"

namespace gptoss::napi {

Napi::Function TensorObject::define(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {
                         InstanceAccessor<&TensorObject::dtype>("dtype"),
                         InstanceAccessor<&TensorObject::shape>("shape"),
                         InstanceAccessor<&TensorObject::device>("device"),
                         InstanceAccessor<&TensorObject::nbytes>("nbytes"),
                         InstanceMethod<&TensorObject::read>("read"),
                         InstanceMethod<&TensorObject::read_scales>("readScales"),
                         InstanceMethod<&TensorObject::to>("to"),
                         InstanceMethod<&TensorObject::dispose>("dispose"),
                     });
}

Napi::Object TensorObject::wrap(Napi::Env env, Tensor t) {
  Napi::Object o = addon_data(env).tensor_class.New({});
  TensorObject::Unwrap(o)->tensor = std::move(t);
  return o;
}

Tensor& TensorObject::unwrap(Napi::Value v, const char* fn, const char* name) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).tensor_class.Value()))
    throw type_error(std::string(fn) + ": argument '" + name + "' must be a Tensor");
  TensorObject* t = TensorObject::Unwrap(v.As<Napi::Object>());
  if (!t->tensor.defined() && t->tensor.numel() != 0)
    throw type_error(std::string(fn) + ": argument '" + name + "' is a disposed Tensor");
  return t->tensor;
}

// Bytes a JS value offers as raw data (TypedArray, DataView or ArrayBuffer).
static bool js_bytes(Napi::Value v, const uint8_t** data, size_t* len) {
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    *data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    *len = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    *data = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    *len = dv.ByteLength();
    return true;
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<const uint8_t*>(ab.Data());
    *len = ab.ByteLength();
    return true;
  }
  return false;
}

// new NativeTensor()                                   (internal: wrap())
// new NativeTensor(dtype, shape, device, data?, scales?)  data/scales: TypedArray | ArrayBuffer
TensorObject::TensorObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorObject>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 0) return;
  guarded(env, [&] {
    const char* fn = "new Tensor";
    DType dtype = parse_dtype(arg_string(info, 0, fn, "dtype"), "new Tensor");
    Shape shape = arg_shape(info, 1, fn, "shape");
    Device device = parse_device(info.Length() > 2 && !info[2].IsUndefined() ? arg_string(info, 2, fn, "device") : "cpu",
                                 "new Tensor");
    if ((dtype == DType::MXFP4 || dtype == DType::MXFP4_GGML || dtype == DType::Q8_0) &&
        (shape.empty() || shape.back() % kMxfp4BlockSize != 0))
      throw range_error(std::string("new Tensor: ") + dtype_name(dtype) + " shape " + shape_str(shape) +
                        " must end in a multiple of 32 (values per block)");
    Tensor host = host_empty(dtype, shape);
    bool have_data = info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull();
    if (have_data) {
      const uint8_t* src;
      size_t len;
      if (!js_bytes(info[3], &src, &len)) throw type_error("new Tensor: argument 'data' must be a TypedArray or ArrayBuffer");
      if (len != host.nbytes())
        throw range_error("new Tensor: 'data' has " + std::to_string(len) + " bytes, " + host.describe() + " needs " +
                          std::to_string(host.nbytes()));
      if (len) std::memcpy(host.data, src, len);  // an empty tensor: src may be null (memcpy must not see it)
      if (dtype == DType::MXFP4) {
        if (info.Length() < 5 || !js_bytes(info[4], &src, &len))
          throw type_error("new Tensor: an mxfp4 tensor needs 'scales' (Uint8Array of E8M0 bytes)");
        if (len != host.scale_bytes())
          throw range_error("new Tensor: 'scales' has " + std::to_string(len) + " bytes, " + host.describe() + " needs " +
                            std::to_string(host.scale_bytes()));
        if (len) std::memcpy(host.scales, src, len);
      }
    } else {
      std::memset(host.data, 0, host.nbytes() + host.scale_bytes());
    }
    tensor = device.kind == DeviceKind::CPU ? host : get_backend(device)->upload(host);
  });
}

Napi::Value TensorObject::dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_name(tensor.dtype)); }
Napi::Value TensorObject::shape(const Napi::CallbackInfo& info) { return shape_to_js(info.Env(), tensor.shape); }
Napi::Value TensorObject::device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), tensor.device.str()); }
Napi::Value TensorObject::nbytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(tensor.nbytes() + tensor.scale_bytes()));
}

static Napi::Value copy_out(Napi::Env env, const Tensor& t, bool scales) {
  size_t bytes = scales ? t.scale_bytes() : t.nbytes();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
  if (bytes == 0) return ab;
  if (!t.defined()) throw type_error("Tensor.read: the tensor was disposed");
  if (t.device.kind == DeviceKind::CPU) {
    std::memcpy(ab.Data(), scales ? t.scales : t.data, bytes);
  } else {
    Tensor view = t;
    if (scales) {  // copy_to_host reads `data`: point it at the scales
      view.data = t.scales;
      view.dtype = DType::U8;
      view.shape = {int64_t(bytes)};
    }
    get_backend(t.device)->copy_to_host(view, ab.Data(), bytes);
  }
  return ab;
}

Napi::Value TensorObject::read(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] { return copy_out(info.Env(), tensor, false); });
}

Napi::Value TensorObject::read_scales(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    if (tensor.dtype != DType::MXFP4) throw type_error("Tensor.readScales: only mxfp4 tensors have scales, this is " + tensor.describe());
    return copy_out(info.Env(), tensor, true);
  });
}

Napi::Value TensorObject::to(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Device target = parse_device(arg_string(info, 0, "Tensor.to", "device"), "Tensor.to");
    if (!tensor.defined() && tensor.numel()) throw type_error("Tensor.to: the tensor was disposed");
    if (target == tensor.device) return wrap(info.Env(), tensor);
    Tensor host = tensor;
    if (tensor.device.kind != DeviceKind::CPU) {
      host = host_empty(tensor.dtype, tensor.shape);
      auto be = get_backend(tensor.device);
      be->copy_to_host(tensor, host.data, tensor.nbytes());
      if (tensor.dtype == DType::MXFP4) {
        Tensor sv = tensor;
        sv.data = tensor.scales;
        sv.dtype = DType::U8;
        sv.shape = {int64_t(tensor.scale_bytes())};
        be->copy_to_host(sv, host.scales, tensor.scale_bytes());
      }
    }
    if (target.kind == DeviceKind::CPU) return wrap(info.Env(), host);
    return wrap(info.Env(), get_backend(target)->upload(host));
  });
}

Napi::Value TensorObject::dispose(const Napi::CallbackInfo& info) {
  Shape s = tensor.shape;
  tensor = Tensor();
  tensor.shape = s;  // keep the shape for messages; data == nullptr marks it disposed
  return info.Env().Undefined();
}

void register_tensor(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = TensorObject::define(env);
  addon_data(env).tensor_class = Napi::Persistent(cls);
  exports.Set("Tensor", cls);
}

}  // namespace gptoss::napi
