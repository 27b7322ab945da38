// Shared by the GPU check (native/cuda/tests/gpu_check.cpp) and the kernel bench
// (bench/gpu-kernels.cpp): fast random host tensors in checkpoint formats.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "model/backend.h"

namespace gptoss::gputest {

// xoshiro-style generator: fast enough to fill gigabytes of weights.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  float normal() {  // sum of uniforms: cheap, bell-shaped, unit variance
    float a = uniform() + uniform() + uniform() + uniform() - 2.0f;
    return a * 1.7320508f;
  }
  int below(int n) { return int((next() >> 33) % uint64_t(n)); }
};

inline Tensor rand_f32(Rng& r, const Shape& shape, float scale = 1.f) {
  Tensor t = host_empty(DType::F32, shape);
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = r.normal() * scale;
  return t;
}
inline Tensor rand_bf16(Rng& r, const Shape& shape, float scale = 1.f) {
  Tensor t = host_empty(DType::BF16, shape);
  uint16_t* p = t.ptr<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = f32_to_bf16(r.normal() * scale);
  return t;
}
// MXFP4 with E8M0 exponents in [smin, smax] (gpt-oss experts sit around 2^-6..2^0).
inline Tensor rand_mxfp4(Rng& r, const Shape& shape, int smin = 118, int smax = 122) {
  Tensor t = host_empty(DType::MXFP4, shape);
  uint8_t* b = static_cast<uint8_t*>(t.data);
  for (size_t i = 0; i < t.nbytes(); i += 8) {
    uint64_t v = r.next();
    std::memcpy(b + i, &v, std::min<size_t>(8, t.nbytes() - i));
  }
  uint8_t* s = static_cast<uint8_t*>(t.scales);
  for (size_t i = 0; i < t.scale_bytes(); ++i) s[i] = uint8_t(smin + r.below(smax - smin + 1));
  return t;
}
// Q8_0 in ggml's blocks: per 32 values an f16 scale d = scale * 2^-7 * (1 + m/1024) (either sign, m
// random) and 32 int8 in [-127, 127].
inline Tensor rand_q8_0(Rng& r, const Shape& shape, float scale = 1.f) {
  Tensor t = host_empty(DType::Q8_0, shape);
  uint8_t* b = static_cast<uint8_t*>(t.data);
  for (int64_t g = 0; g < t.numel() / kQ8BlockSize; ++g) {
    uint8_t* blk = b + g * kQ8BlockBytes;
    const uint16_t d = f32_to_f16(scale * (1.f / 128.f) * (1.f + r.uniform()) * (r.uniform() < 0.5f ? -1.f : 1.f));
    std::memcpy(blk, &d, 2);
    for (int k = 0; k < kQ8BlockSize; ++k) blk[2 + k] = uint8_t(int8_t(r.below(255) - 127));
  }
  return t;
}
inline Tensor i32_tensor(const std::vector<int32_t>& v, const Shape& shape) {
  Tensor t = host_empty(DType::I32, shape);
  std::memcpy(t.data, v.data(), v.size() * 4);
  return t;
}

}  // namespace gptoss::gputest
