#include "tensor.h"

#include <cstdlib>
#include <sstream>

namespace gptoss {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype)) + shape_str(shape) + " on " + device.str();
}

Tensor Tensor::rows(int64_t start, int64_t count) const {
  if (shape.empty() || start < 0 || count < 0 || start + count > shape[0])
    throw range_error("rows(" + std::to_string(start) + ", " + std::to_string(count) + ") out of range for " + describe());
  Tensor v = *this;
  int64_t row = numel() / (shape[0] ? shape[0] : 1);
  v.shape[0] = count;
  v.data = static_cast<uint8_t*>(data) + dtype_bytes(dtype, row * start);
  if (dtype == DType::MXFP4) v.scales = static_cast<uint8_t*>(scales) + row * start / kMxfp4BlockSize;
  return v;
}

Tensor Tensor::select(int64_t i) const {
  Tensor v = rows(i, 1);
  v.shape.erase(v.shape.begin());
  return v;
}

Tensor Tensor::reshaped(const Shape& s) const {
  Tensor v = *this;
  v.shape = s;
  if (v.numel() != numel())
    throw range_error("cannot reshape " + describe() + " to " + shape_str(s));
  return v;
}

Tensor host_empty(DType dtype, const Shape& shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  for (int64_t d : shape)
    if (d < 0) throw range_error("negative dimension in shape " + shape_str(shape));
  size_t bytes = t.nbytes() + t.scale_bytes();
  size_t padded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded ? padded : 64);
  if (!p) throw runtime_error("out of host memory allocating " + std::to_string(bytes) + " bytes for " + t.describe());
  t.storage = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data = p;
  if (dtype == DType::MXFP4) t.scales = static_cast<uint8_t*>(p) + t.nbytes();
  return t;
}

void expect_dtype(const Tensor& t, DType d, const char* what) {
  if (t.dtype != d)
    throw type_error(std::string(what) + ": expected dtype " + dtype_name(d) + ", got " + t.describe());
}

void expect_ndim(const Tensor& t, int n, const char* what) {
  if (t.ndim() != n)
    throw range_error(std::string(what) + ": expected " + std::to_string(n) + " dimensions, got " + t.describe());
}

void expect_shape(const Tensor& t, const Shape& s, const char* what) {
  if (t.shape != s)
    throw range_error(std::string(what) + ": expected shape " + shape_str(s) + ", got " + t.describe());
}

}  // namespace gptoss
