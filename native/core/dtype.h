// Element types. MXFP4 is the checkpoint's expert format: per row, blocks of 32 FP4 E2M1 values
// (16 bytes, low nibble first) plus one E8M0 scale byte 2^(s-127) (transformers integrations/mxfp4.py).
// The GGUF types are read in place, in ggml's block layouts (ggml-common.h):
//  - MXFP4_GGML: 17-byte blocks of 32 values, the E8M0 scale byte then 16 bytes in which byte j holds
//    value j in its low nibble and value j + 16 in its high nibble (same E2M1 codes as MXFP4).
//  - Q8_0: 34-byte blocks of 32 values, an IEEE f16 scale d then 32 int8 q; value = d * q.
//  - F16: IEEE half.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace gptoss {

enum class DType : uint8_t { F32 = 0, BF16 = 1, I32 = 2, U8 = 3, MXFP4 = 4, MXFP4_GGML = 5, Q8_0 = 6, F16 = 7 };

constexpr int kMxfp4BlockSize = 32;       // values per scale
constexpr int kMxfp4BlockBytes = 16;      // two E2M1 codes a byte
constexpr int kMxfp4GgmlBlockBytes = 17;  // scale byte + 16 code bytes
constexpr int kQ8BlockSize = 32;
constexpr int kQ8BlockBytes = 34;         // f16 scale + 32 int8

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
    case DType::MXFP4: return "mxfp4";
    case DType::MXFP4_GGML: return "mxfp4-ggml";
    case DType::Q8_0: return "q8_0";
    case DType::F16: return "f16";
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
    case DType::MXFP4_GGML: return size_t(n) / kMxfp4BlockSize * kMxfp4GgmlBlockBytes;
    case DType::Q8_0: return size_t(n) / kQ8BlockSize * kQ8BlockBytes;
    case DType::F16: return size_t(n) * 2;
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

// IEEE binary16 -> f32, exact (subnormals, inf and NaN included).
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(float(mant), -24);  // zero or subnormal
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= sign;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const uint32_t u = sign | (exp == 31 ? (0xffu << 23) | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
  std::memcpy(&f, &u, 4);
  return f;
}

// f32 -> IEEE binary16, round to nearest even (overflow to inf), as numpy's float16 cast.
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);          // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);         // rounds past 65504: inf
  if (abs < 0x38800000u) {                                          // below 2^-14: subnormal half
    float a;
    std::memcpy(&a, &abs, 4);
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)));  // units of 2^-24, ties to even
  }
  const uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);              // round mantissa to 10 bits
  return uint16_t(sign | uint16_t((r - (112u << 23)) >> 13));
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
