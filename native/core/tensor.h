// A tensor is a typed view (dtype, shape, data pointer) plus a shared owner of the storage:
// a heap buffer, a device allocation or a file mapping. Views (rows()) share the owner.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "error.h"

namespace gptoss {

// HIP: an AMD GPU through ROCm (native/hip/: the CUDA kernels compiled as HIP, loaded as a plugin).
enum class DeviceKind : uint8_t { CPU = 0, CUDA = 1, HIP = 2 };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const {
    if (kind == DeviceKind::CPU) return "cpu";
    return (kind == DeviceKind::HIP ? "hip:" : "cuda:") + std::to_string(index);
  }
};

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  Device device;
  void* data = nullptr;     // MXFP4: blocks [..., rows, cols/32, 16]
  void* scales = nullptr;   // MXFP4 only: E8M0 bytes [..., rows, cols/32]
  std::shared_ptr<void> storage;  // keeps data (and scales) alive

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int ndim() const { return int(shape.size()); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }
  size_t scale_bytes() const { return dtype == DType::MXFP4 ? size_t(numel() / kMxfp4BlockSize) : 0; }
  bool defined() const { return data != nullptr; }

  template <typename T> T* ptr() const { return static_cast<T*>(data); }

  // Rows [start, start+count) along the first dimension, sharing storage.
  Tensor rows(int64_t start, int64_t count) const;
  // Same storage, another shape of equal element count.
  Tensor reshaped(const Shape& s) const;
  // The i-th slice along the first dimension (drops that dimension): used for one expert's weights.
  Tensor select(int64_t i) const;

  std::string describe() const;  // "bf16[2880, 2880] on cpu"
};

// Host tensors backed by 64-byte-aligned heap memory (SIMD-friendly).
Tensor host_empty(DType dtype, const Shape& shape);

// Checks used by every backend entry point and by napi/: throw RangeError/TypeError naming `what`.
void expect_dtype(const Tensor& t, DType d, const char* what);
void expect_ndim(const Tensor& t, int n, const char* what);
void expect_shape(const Tensor& t, const Shape& s, const char* what);

}  // namespace gptoss
