// Element types. MXFP4 is the checkpoint's expert format: per row, blocks of 32 FP4 E2M1 values
// (16 bytes, low nibble first) plus one E8M0 scale byte 2^(s-127) (transformers integrations/mxfp4.py).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace gptoss {

enum class DType : uint8_t { F32 = 0, BF16 = 1, I32 = 2, U8 = 3, MXFP4 = 4 };

constexpr int kMxfp4BlockSize = 32;       // values per scale
constexpr int kMxfp4BlockBytes = 16;      // two E2M1 codes a byte

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
    case DType::MXFP4: return "mxfp4";
  }
  return "?";
}

// Bytes of the primary storage for n logical elements (for MXFP4: the packed blocks only).
inline size_t dtype_bytes(DType t, int64_t n) {
  switch (t) {
    case DType::F32: case DType::I32: return size_t(n) * 4;
    case DType::BF16: return size_t(n) * 2;
    case DType::U8: return size_t(n);
    case DType::MXFP4: return size_t(n) / 2;
  }
  return 0;
}

// bf16 is the top half of an IEEE float32: widening is exact.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept quiet (same rounding as torch's float -> bfloat16).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// FP4 E2M1 code -> value: bit 3 sign, codes 0..7 = 0, 0.5, 1, 1.5, 2, 3, 4, 6.
inline float e2m1_to_f32(uint8_t code) {
  static const float kValues[16] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f,
                                    -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
  return kValues[code & 15];
}

// E8M0 scale byte -> 2^(s-127). s = 255 is NaN in the OCP MX spec; transformers' ldexp gives inf, we follow it.
inline float e8m0_to_f32(uint8_t s) { return std::ldexp(1.0f, int(s) - 127); }

}  // namespace gptoss
