// The KV cache's element types on the device (a model's kvCache load option, model/backend.h
// kv_types): every kernel that reads or writes a cache (kv_store, rope_kv_store, the attention
// paths) is a template over KvType and reaches the elements through KvTraits<KV>::Key and ::Value
// only, so a new cache type is one traits struct here plus one case in dispatch_kv.
//  - BF16 (default: the type every GPU run so far used): f32's range, 7 mantissa bits.
//  - F16: IEEE half, 10 mantissa bits (bf16 has 7): the cache rounds K and V 8x more
//    finely at the same bytes. Range +-65504: gpt-oss's K and V rows are RMS-normed projections
//    (|x| ~ 1..100), far inside it; a value beyond it becomes inf, as in llama.cpp's f16 cache.
//  - F32: exact, twice the bytes.
//  - F32K_F16V (kvCache 'f32k-f16v'): K exact in f32, V in f16 (6 bytes a K/V element pair). Rounding
//    K moves scores, and on deep checkpoints a moved score tips near-tied router choices downstream;
//    rounding V only perturbs an average (CPU emulation, bench/RESULTS.md issue 12: f16 K alone 6.1e-2
//    logits rel L2 on deep-a, f16 V alone 4.1e-4).
#pragma once
#include <cstdint>
#include <type_traits>

#include "convert.cuh"
#if defined(GPTOSS_HIP)
#include <hip/hip_fp16.h>
#else
#include <cuda_fp16.h>
#endif

namespace gptoss::cuda {

enum class KvType : uint8_t { F32, BF16, F16, F32K_F16V };

inline const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::BF16: return "bf16";
    case KvType::F16: return "f16";
    case KvType::F32K_F16V: return "f32k-f16v";
  }
  return "?";
}

// One element type of a cache: its storage T, and f32 loads / round-to-nearest-even stores.
enum class KvElemType : uint8_t { F32, BF16, F16 };
template <KvElemType E>
struct KvElem;

template <>
struct KvElem<KvElemType::F32> {
  using T = float;
  static constexpr bool kHalfWidth = false;
  __device__ static __forceinline__ float load(const T* p, int64_t i) { return p[i]; }
  __device__ static __forceinline__ void store(T* p, int64_t i, float v) { p[i] = v; }
};

template <>
struct KvElem<KvElemType::BF16> {
  using T = uint16_t;
  static constexpr bool kHalfWidth = true;
  __device__ static __forceinline__ float load(const T* p, int64_t i) { return bf16_bits_to_f32(p[i]); }
  __device__ static __forceinline__ void store(T* p, int64_t i, float v) {
    reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  }
  // The two elements of a 32-bit word (low half = the lower index).
  __device__ static __forceinline__ float lo(uint32_t pair) { return bf16_lo(pair); }
  __device__ static __forceinline__ float hi(uint32_t pair) { return bf16_hi(pair); }
};

template <>
struct KvElem<KvElemType::F16> {
  using T = uint16_t;
  static constexpr bool kHalfWidth = true;
  __device__ static __forceinline__ float load(const T* p, int64_t i) {
    return __half2float(reinterpret_cast<const __half*>(p)[i]);
  }
  __device__ static __forceinline__ void store(T* p, int64_t i, float v) {
    reinterpret_cast<__half*>(p)[i] = __float2half_rn(v);
  }
  __device__ static __forceinline__ float lo(uint32_t pair) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(pair & 0xffffu)));
  }
  __device__ static __forceinline__ float hi(uint32_t pair) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(pair >> 16)));
  }
};

// A cache type names the element type of its K rows and of its V rows (kernels read K through Key and
// V through Value, and stage each with its own widths).
template <KvElemType KE, KvElemType VE>
struct KvPair {
  using Key = KvElem<KE>;
  using Value = KvElem<VE>;
};
template <KvType K>
struct KvTraits;
template <>
struct KvTraits<KvType::F32> : KvPair<KvElemType::F32, KvElemType::F32> {};
template <>
struct KvTraits<KvType::BF16> : KvPair<KvElemType::BF16, KvElemType::BF16> {};
template <>
struct KvTraits<KvType::F16> : KvPair<KvElemType::F16, KvElemType::F16> {};
template <>
struct KvTraits<KvType::F32K_F16V> : KvPair<KvElemType::F32, KvElemType::F16> {};

// Calls f(std::integral_constant<KvType, t>{}): the one host-side switch from a run-time cache type
// to a kernel instantiation.
template <class F>
decltype(auto) dispatch_kv(KvType t, F&& f) {
  switch (t) {
    case KvType::F32: return f(std::integral_constant<KvType, KvType::F32>{});
    case KvType::BF16: return f(std::integral_constant<KvType, KvType::BF16>{});
    case KvType::F32K_F16V: return f(std::integral_constant<KvType, KvType::F32K_F16V>{});
    case KvType::F16: break;
  }
  return f(std::integral_constant<KvType, KvType::F16>{});
}

}  // namespace gptoss::cuda
