// MXFP4 (FP4 E2M1 values, one E8M0 scale per 32): dequantization, and the packed matvec/matmul that
// reads expert weights in place (never a dequantized copy). Layout: core/dtype.h and
// test/fixtures/tiny-a/README.md (byte k = value 2k in the low nibble, 2k+1 in the high nibble).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

const float* e8m0_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(256);
    for (int s = 0; s < 256; ++s) t[s] = e8m0_to_f32(uint8_t(s));
    return t;
  }();
  return table.data();
}

const float* e8m0_half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(256);
    for (int s = 0; s < 256; ++s) t[s] = 0.5f * e8m0_to_f32(uint8_t(s));  // 2^(s-128): exact, subnormal at s = 0
    return t;
  }();
  return table.data();
}

const uint8_t kEvenOddPos[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

void mxfp4_ggml_order(const uint8_t* pos, uint8_t* out) {
  for (int c = 0; c < 32; ++c) out[c] = pos[2 * (c % 16) + c / 16];
}

void permute_for_mxfp4(const float* x, int64_t n, int64_t cols, const uint8_t* pos, float* xp) {
  for (int64_t i = 0; i < n * cols; i += kMxfp4BlockSize)
    for (int c = 0; c < 32; ++c) xp[i + pos[c]] = x[i + c];
}

void quantize_q8(const float* x, int64_t n, int64_t cols, int8_t* q, float* d) {
  for (int64_t b = 0; b < n * cols / kMxfp4BlockSize; ++b) {
    const float* xb = x + b * kMxfp4BlockSize;
    float amax = 0.f;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(xb[k]));
    const float scale = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
    // Round to nearest even by adding and removing 1.5 * 2^23 (exact for |v| <= 2^22; here |v| <=
    // 127 up to rounding): the loop vectorizes, where std::nearbyint is a libm call per value that
    // saves and restores the FP environment (it cost more than the decode matvec it feeds).
    for (int k = 0; k < 32; ++k) {
      const float v = std::min(127.f, std::max(-127.f, xb[k] * inv));
      q[b * kMxfp4BlockSize + k] = int8_t(int32_t((v + 12582912.f) - 12582912.f));
    }
    d[b] = scale;
  }
}

const int8_t kE2m1Twice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

namespace portable {
namespace {
// QS / SS: bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1; ggml's 17-byte
// blocks 17 / 17, read as codes = base + 1, scales = base).
template <int QS, int SS>
void rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
             float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* half = e8m0_half_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* b = blocks + r * nblk * QS;
    const uint8_t* s = scales + r * nblk * SS;
    for (int64_t t = 0; t < n; ++t) {
      const int8_t* x = xq + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        int32_t dot = 0;  // |dot| <= 32 * 12 * 127: exact
        for (int k = 0; k < 16; ++k) {
          const uint8_t byte = b[g * QS + k];
          dot += kE2m1Twice[byte & 15] * x[g * 32 + k] + kE2m1Twice[byte >> 4] * x[g * 32 + 16 + k];
        }
        acc += float(dot) * (xd[t * nblk + g] * half[s[g * SS]]);
      }
      out[t * ld + r] = acc;
    }
  }
}
}  // namespace

void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  rows_q8<kMxfp4BlockBytes, 1>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  rows_q8<kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
                int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* e8m0 = e8m0_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* b = blocks + r * nblk * kMxfp4BlockBytes;
    const uint8_t* s = scales + r * nblk;
    for (int64_t t = 0; t < n; ++t) {
      const float* x = xp + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        float part[16] = {};  // 16 lanes: the compiler vectorizes this on any target
        for (int k = 0; k < 16; ++k) {
          uint8_t byte = b[g * 16 + k];
          part[k] = e2m1_to_f32(byte & 15) * x[g * 32 + k] + e2m1_to_f32(byte >> 4) * x[g * 32 + 16 + k];
        }
        float sum = 0.f;
        for (int k = 0; k < 16; ++k) sum += part[k];
        acc += sum * e8m0[s[g]];
      }
      out[t * ld + r] = acc;
    }
  }
}

void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
                     int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* e8m0 = e8m0_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = blocks + r * nblk * kMxfp4GgmlBlockBytes;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        const uint8_t* b = row + g * kMxfp4GgmlBlockBytes;  // scale byte, then 16 code bytes
        float part[16] = {};
        for (int k = 0; k < 16; ++k)
          part[k] = e2m1_to_f32(b[1 + k] & 15) * xt[g * 32 + k] + e2m1_to_f32(b[1 + k] >> 4) * xt[g * 32 + 16 + k];
        float sum = 0.f;
        for (int k = 0; k < 16; ++k) sum += part[k];
        acc += sum * e8m0[b[0]];
      }
      out[t * ld + r] = acc;
    }
  }
}
}  // namespace portable

// ---- MXFP4 linear: out[n, O] = x[n, I] W[O, I]^T (+ bias) with W packed ----
void linear_mxfp4(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  std::vector<float> xp(static_cast<size_t>(n * in));
  permute_for_mxfp4(x.ptr<float>(), n, in, k.mxfp4_pos, xp.data());
  const auto* blocks = static_cast<const uint8_t*>(weight.data);
  const auto* scales = static_cast<const uint8_t*>(weight.scales);
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        k.mxfp4_rows(blocks, scales, in, xp.data(), n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// ggml blocks: the activations in the set's ggml order (mxfp4_ggml_order).
void linear_mxfp4_ggml(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  uint8_t pos[32];
  mxfp4_ggml_order(k.mxfp4_pos, pos);
  std::vector<float> xp(static_cast<size_t>(n * in));
  permute_for_mxfp4(x.ptr<float>(), n, in, pos, xp.data());
  const auto* blocks = static_cast<const uint8_t*>(weight.data);
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        k.mxfp4_ggml_rows(blocks, in, xp.data(), n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// q8 activations (either block form): x in the set's q8 order, rounded per 32-block (quantize_q8), then
// the q8 row kernels, as the experts run with activations 'q8'. What ops.linear(..., 'q8') runs on MXFP4
// weights: the kernel tests' handle on the q8 expert kernels, every token count.
void linear_mxfp4_q8(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0), nblk = in / kMxfp4BlockSize;
  const Kernels& k = kernels();
  const bool ggml = weight.dtype == DType::MXFP4_GGML;
  uint8_t pos[32];
  if (ggml)
    mxfp4_ggml_order(k.mxfp4_q8_pos, pos);
  else
    std::copy_n(k.mxfp4_q8_pos, 32, pos);
  std::vector<float> xp(static_cast<size_t>(n * in));
  permute_for_mxfp4(x.ptr<float>(), n, in, pos, xp.data());
  std::vector<int8_t> xq(static_cast<size_t>(n * in));
  std::vector<float> xd(static_cast<size_t>(n * nblk));
  quantize_q8(xp.data(), n, in, xq.data(), xd.data());
  const auto* blocks = static_cast<const uint8_t*>(weight.data);
  const auto* scales = static_cast<const uint8_t*>(weight.scales);
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        if (ggml)
          k.mxfp4_ggml_rows_q8(blocks, in, xq.data(), xd.data(), n, y, o, r0, r1);
        else
          k.mxfp4_rows_q8(blocks, scales, in, xq.data(), xd.data(), n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// ---- quantize (bf16 experts of a fine-tuned checkpoint -> MXFP4 at load) ----
// E2M1 code of v (|v| <= 6 after scaling), round to nearest, ties to the even code (codes 0-7 are
// 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 the sign).
static inline uint8_t e2m1_code(float v) {
  const float a = std::fabs(v);
  uint8_t c = a <= 0.25f ? 0 : a < 0.75f ? 1 : a <= 1.25f ? 2 : a < 1.75f ? 3 : a <= 2.5f ? 4 : a < 3.5f ? 5 : a <= 5.f ? 6 : 7;
  return uint8_t(c | (std::signbit(v) && c ? 8 : 0));
}

static inline float e2m1_value(uint8_t code) { return e2m1_to_f32(code); }

// One block of 32 values with scale 2^e: codes into `codes` (HF order: value 2k low nibble, 2k + 1
// high), returns the squared error.
static float encode_block_mxfp4(const float* v, int e, uint8_t* codes) {
  const float inv = std::ldexp(1.f, -e), scale = std::ldexp(1.f, e);
  float err = 0.f;
  for (int k = 0; k < 16; ++k) {
    const uint8_t lo = e2m1_code(std::max(-6.f, std::min(6.f, v[2 * k] * inv)));
    const uint8_t hi = e2m1_code(std::max(-6.f, std::min(6.f, v[2 * k + 1] * inv)));
    const float d0 = v[2 * k] - e2m1_value(lo) * scale, d1 = v[2 * k + 1] - e2m1_value(hi) * scale;
    err += d0 * d0 + d1 * d1;
    codes[k] = uint8_t(lo | (hi << 4));
  }
  return err;
}

// One block of 32 values -> its E8M0 scale byte and 16 code bytes. Two candidate scales: the OCP MX
// rule's 2^(floor(log2 max|v|) - 2) (values above 6 saturate) and the round-up 2^ceil(log2(max|v| / 6))
// that triton_kernels' downcast_to_mxfp uses (nothing saturates, small values lose a step); the one
// with the smaller squared error is kept. Blocks that came from MXFP4 come back exactly either way.
static void quantize_block_mxfp4(const float* v, uint8_t* codes, uint8_t* scale) {
  float amax = 0.f;
  for (int k = 0; k < kMxfp4BlockSize; ++k) amax = std::max(amax, std::fabs(v[k]));
  if (!(amax > 0.f) || !std::isfinite(amax)) {  // zeros (or non-finite input: zeros as well)
    *scale = 127;
    std::fill(codes, codes + 16, uint8_t(0));
    return;
  }
  int exp;
  const float m = std::frexp(amax, &exp);  // amax = m 2^exp, m in [0.5, 1): floor(log2 amax) = exp - 1
  const int e_floor = std::max(-127, std::min(127, exp - 1 - 2));
  int e_up = e_floor;
  while (e_up < 127 && amax > 6.f * std::ldexp(1.f, e_up)) ++e_up;  // at most one step above e_floor
  (void)m;
  uint8_t a[16], b[16];
  const float err_floor = encode_block_mxfp4(v, e_floor, a);
  const float err_up = e_up == e_floor ? err_floor : encode_block_mxfp4(v, e_up, b);
  const bool up = err_up < err_floor;
  std::copy(up ? b : a, (up ? b : a) + 16, codes);
  *scale = uint8_t((up ? e_up : e_floor) + 127);
}

namespace portable {
// The scalar reference of Kernels::mxfp4_quantize_cols: one output row (block) at a time.
void mxfp4_quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                         uint8_t* scales, int64_t stride) {
  float v[kMxfp4BlockSize];
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t k = 0; k < kMxfp4BlockSize; ++k) {
      const int64_t i = k * ld + r;
      v[k] = quant_src_at(src, kind, i);
    }
    quantize_block_mxfp4(v, codes + r * stride * kMxfp4BlockBytes, scales + r * stride);
  }
}
}  // namespace portable

// Checks src [E, C, R] against out [E, R, C]; returns C / 32.
static int64_t check_quantize_transposed(DType src_dtype, const Shape& s, const std::string& src_desc, Tensor& out) {
  if (src_dtype != DType::BF16 && src_dtype != DType::F32 && src_dtype != DType::F16)
    throw type_error("quantizeMxfp4: src must be bf16, f16 or f32, got " + src_desc);
  if (s.size() != 3) throw range_error("quantizeMxfp4: src: expected 3 dimensions, got " + src_desc);
  expect_dtype(out, DType::MXFP4, "quantizeMxfp4: out");
  expect_shape(out, {s[0], s[2], s[1]}, "quantizeMxfp4: out");
  if (s[1] % kMxfp4BlockSize != 0) throw range_error("quantizeMxfp4: src [E, C, R] needs C % 32 == 0, got " + src_desc);
  return s[1] / kMxfp4BlockSize;
}

// One task = one expert's 32 source rows (a block column of the output) for every output row: reads
// those rows (one contiguous slab: slab(task) returns it) once, writes one block per output row.
template <typename Slab>
static void quantize_transposed_tasks(DType src_dtype, const Shape& s, int64_t nblk, Tensor& out, Slab&& slab) {
  const int64_t e = s[0], rows = s[2];
  const QuantSrc kind = quant_src_of(src_dtype);
  auto* codes = static_cast<uint8_t*>(out.data);
  auto* scales = static_cast<uint8_t*>(out.scales);
  const auto quantize_cols = kernels().mxfp4_quantize_cols;
  parallel_for(e * nblk, [&](int64_t a, int64_t b) {
    for (int64_t task = a; task < b; ++task) {
      const int64_t ex = task / nblk, g = task % nblk;
      quantize_cols(slab(task), kind, rows, 0, rows, codes + size_t(ex * rows * nblk + g) * kMxfp4BlockBytes,
                    scales + ex * rows * nblk + g, nblk);
    }
  }, 1);
}

void quantize_mxfp4_transposed(const Tensor& src, Tensor& out) {
  const int64_t nblk = check_quantize_transposed(src.dtype, src.shape, src.describe(), out);
  const size_t slab = size_t(kMxfp4BlockSize * src.dim(2)) * (src.dtype == DType::F32 ? 4 : 2);
  const auto* in = static_cast<const uint8_t*>(src.data);
  quantize_transposed_tasks(src.dtype, src.shape, nblk, out, [&](int64_t task) { return in + size_t(task) * slab; });
}

void quantize_mxfp4_transposed(DType src_dtype, const Shape& src_shape, const SourceReader& read, Tensor& out) {
  const int64_t nblk = check_quantize_transposed(src_dtype, src_shape, std::string(dtype_name(src_dtype)) + shape_str(src_shape), out);
  if (src_shape[0] * nblk == 0) return;
  const size_t slab = size_t(kMxfp4BlockSize * src_shape[2]) * (src_dtype == DType::F32 ? 4 : 2);
  // a buffer per thread, reused across tasks and calls (a slab is 184-368 KB for gpt-oss: in L2)
  thread_local std::vector<uint8_t> buf;
  quantize_transposed_tasks(src_dtype, src_shape, nblk, out, [&](int64_t task) -> const void* {
    if (buf.size() < slab) buf.resize(slab);
    read(size_t(task) * slab, slab, buf.data());
    return buf.data();
  });
}

// ---- dequantize ----
static inline void store(Tensor& out, int64_t i, float v) {
  if (out.dtype == DType::F32)
    out.ptr<float>()[i] = v;
  else
    out.ptr<uint16_t>()[i] = f32_to_bf16(v);
}

void mxfp4_from_ggml(const Tensor& src, Tensor& out) {
  expect_dtype(src, DType::MXFP4_GGML, "mxfp4FromGgml: src");
  expect_dtype(out, DType::MXFP4, "mxfp4FromGgml: out");
  expect_shape(out, src.shape, "mxfp4FromGgml: out");
  if (src.ndim() < 1 || src.dim(-1) % kMxfp4BlockSize != 0)
    throw range_error("mxfp4FromGgml: rows must hold whole 32-value blocks, got " + src.describe());
  const int64_t nblk = src.numel() / kMxfp4BlockSize;
  const auto* in = static_cast<const uint8_t*>(src.data);
  auto* blocks = static_cast<uint8_t*>(out.data);
  auto* scales = static_cast<uint8_t*>(out.scales);
  parallel_for(nblk, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const uint8_t* b = in + g * kMxfp4GgmlBlockBytes;
      scales[g] = b[0];
      uint8_t code[32];
      for (int j = 0; j < 16; ++j) code[j] = b[1 + j] & 15, code[j + 16] = b[1 + j] >> 4;
      for (int k = 0; k < 16; ++k) blocks[g * kMxfp4BlockBytes + k] = uint8_t(code[2 * k] | (code[2 * k + 1] << 4));
    }
  }, 4096);
}

void mxfp4_dequantize(const Tensor& packed, Tensor& out) {
  checks::mxfp4_dequantize(packed, out, kCpuDevice);
  const int64_t nblk = packed.numel() / kMxfp4BlockSize;
  const auto* blocks = static_cast<const uint8_t*>(packed.data);
  const auto* scales = static_cast<const uint8_t*>(packed.scales);
  const float* e8m0 = e8m0_table();
  parallel_for(
      nblk, [&](int64_t g0, int64_t g1) {
        for (int64_t g = g0; g < g1; ++g) {
          float s = e8m0[scales[g]];
          for (int k = 0; k < 16; ++k) {
            uint8_t byte = blocks[g * 16 + k];
            store(out, g * 32 + 2 * k, e2m1_to_f32(byte & 15) * s);
            store(out, g * 32 + 2 * k + 1, e2m1_to_f32(byte >> 4) * s);
          }
        }
      },
      256);
}

namespace ref {
void mxfp4_dequantize(const Tensor& packed, Tensor& out) {
  checks::mxfp4_dequantize(packed, out, kCpuDevice);
  const auto* blocks = static_cast<const uint8_t*>(packed.data);
  const auto* scales = static_cast<const uint8_t*>(packed.scales);
  for (int64_t i = 0; i < packed.numel(); ++i) {
    uint8_t byte = blocks[i / 2];
    uint8_t code = (i % 2 == 0) ? (byte & 15) : (byte >> 4);
    store(out, i, e2m1_to_f32(code) * std::ldexp(1.0f, int(scales[i / 32]) - 127));
  }
}
}  // namespace ref

}  // namespace gptoss::cpu
