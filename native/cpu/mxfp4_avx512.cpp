// AVX-512 MXFP4 row kernel (compiled with -mavx512f -mavx512bw -mavx512vl -mfma, see cpu.cmake).
// Decode: the 16 bytes of a block widen to 16 int32 lanes; vpermps reads only the low 4 bits of
// each index, so the byte itself indexes the 16-entry E2M1 table for the low nibble and byte >> 4
// for the high nibble: two table lookups in a register per 32 weights, no masking.
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels.h"
#include "mxfp4_avx512_q8.h"
#include "row_blocks.h"

namespace gptoss::cpu::avx512 {

namespace {
inline __m512 e2m1_table() {
  return _mm512_setr_ps(0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f, -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f);
}

// The block scale 2^(s-127) is applied by adding (s-127) to the exponent field of the table's
// nonzero entries (an integer add, exact while 2 <= s <= 252), so a block costs two table lookups
// and two FMAs; Zen 4 issues one 512-bit FMA a cycle, which made the multiply by the scale the
// bottleneck (see bench/cpu-kernels.mjs). Other scales take the multiply path.
inline __m512 scaled_table(__m512i lut_bits, uint8_t s, const float* e8m0) {
  if (s >= 2 && s <= 252) {
    const __m512i delta = _mm512_set1_epi32((int32_t(s) - 127) * (1 << 23));
    return _mm512_castsi512_ps(_mm512_mask_add_epi32(lut_bits, __mmask16(0xfefe), lut_bits, delta));
  }
  return _mm512_mul_ps(_mm512_castsi512_ps(lut_bits), _mm512_set1_ps(e8m0[s]));
}

// (s - 127) << 23 for every E8M0 byte: the exponent-field delta, fetched with one broadcast load
// (no general-register to vector transfer on the per-block path). Used by the decode matvec, where
// the load ports are the tighter resource: a 4-byte broadcast instead of the 64-byte table below.
const int32_t* exponent_delta_table() {
  static const auto* table = [] {
    static int32_t t[256];
    for (int s = 0; s < 256; ++s) t[s] = (s - 127) * (1 << 23);
    return t;
  }();
  return table;
}

inline __m512 scaled_table_fast(__m512i lut_bits, uint8_t s, const int32_t* delta, const float* e8m0) {
  if (s >= 2 && s <= 252)
    return _mm512_castsi512_ps(_mm512_mask_add_epi32(lut_bits, __mmask16(0xfefe), lut_bits, _mm512_set1_epi32(delta[s])));
  return _mm512_mul_ps(_mm512_castsi512_ps(lut_bits), _mm512_set1_ps(e8m0[s]));
}

// The 16 E2M1 values times 2^(s-127) for every E8M0 byte s (16 KB; the few scales a model uses
// stay in L1): a block's scaled table is one 64-byte load, with no exponent arithmetic or range
// branch on the per-block path. Used by the prefill tile, where it took 4 x 4 tiles from 60 to 73
// GFLOP/s a core (bench/RESULTS.md, CPU kernels, third pass). Each entry is the product the reference computes (exact: E2M1 x
// 2^k, subnormal for s < 2 and inf/NaN for s = 255 as ldexp gives).
const float* scaled_e2m1_tables() {
  static const float* tables = [] {
    alignas(64) static float t[256 * 16];
    const float* e8m0 = e8m0_table();
    for (int s = 0; s < 256; ++s)
      for (int c = 0; c < 16; ++c) t[s * 16 + c] = e2m1_to_f32(uint8_t(c)) * e8m0[s];
    return t;
  }();
  return tables;
}
inline __m512 scaled_table_at(const float* tables, uint8_t s) { return _mm512_load_ps(tables + 16 * int(s)); }

// Four rows times one token (decode): each x block is loaded once for the four rows, which halves
// the load-port traffic per weight block (two 64-byte x loads shared instead of repeated).
constexpr int64_t kPrefetch = 2048;  // bytes; 1024: 20 GB/s, 2048-4096: 23-24 GB/s (bench/RESULTS.md)
template <int QS, int SS>
inline void rows_dot4(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, const float* e8m0,
                      float* res) {
  const __m512i lut = _mm512_castps_si512(e2m1_table());
  const int32_t* delta = exponent_delta_table();
  const int64_t rb = nblk * QS;  // bytes per row
  __m512 acc[4][2];
  for (int r = 0; r < 4; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    // Four interleaved row streams defeat the hardware prefetchers' distance: each row is fetched
    // kPrefetch bytes ahead, running on into the next four rows (which follow contiguously).
    prefetch_rows<QS, 4>(b, rb, g, kPrefetch);
    const __m512 x0 = _mm512_loadu_ps(x + 32 * g), x1 = _mm512_loadu_ps(x + 32 * g + 16);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + r * rb + QS * g)));
      const __m512 table = scaled_table_fast(lut, s[(r * nblk + g) * SS], delta, e8m0);
      acc[r][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(q, table), x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table), x1, acc[r][1]);
    }
  }
  for (int r = 0; r < 4; ++r) res[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

// One row times one token: four accumulators cover the FMA latency.
template <int QS, int SS>
inline float row_dot1(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, const float* e8m0) {
  const __m512i lut = _mm512_castps_si512(e2m1_table());
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
         acc3 = _mm512_setzero_ps();
  auto block = [&](int64_t g, __m512& a, __m512& c) {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + QS * g)));
    const __m512 table = scaled_table(lut, s[g * SS], e8m0);
    a = _mm512_fmadd_ps(_mm512_permutexvar_ps(q, table), _mm512_loadu_ps(x + 32 * g), a);
    c = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table), _mm512_loadu_ps(x + 32 * g + 16), c);
  };
  int64_t g = 0;
  for (; g + 2 <= nblk; g += 2) {
    block(g, acc0, acc1);
    block(g + 1, acc2, acc3);
  }
  if (g < nblk) block(g, acc0, acc1);
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

// R rows times T tokens (prefill, grouped MoE): each block is decoded once per row and used T
// times, each activation load R times; 2*R*T FMAs against R decodes and 2*T loads per block, so
// the loop is FMA-bound (R = 4, T = 4: 16 accumulators + 8 decoded vectors + 2 activations).
template <int QS, int SS, int R, int T>
inline void tile(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols,
                 const float* e8m0, float* out, int64_t ld) {
  const float* tables = scaled_e2m1_tables();
  const int64_t rb = nblk * QS;
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    // As in rows_dot4: R interleaved row streams, each fetched kPrefetch bytes ahead.
    prefetch_rows<QS, R>(b, rb, g, kPrefetch);
    __m512 lo[R], hi[R];
    for (int i = 0; i < R; ++i) {
      const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i * rb + QS * g)));
      const __m512 table = scaled_table_at(tables, s[(i * nblk + g) * SS]);
      lo[i] = _mm512_permutexvar_ps(q, table);
      hi[i] = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
    }
    for (int j = 0; j < T; ++j) {
      const __m512 x0 = _mm512_loadu_ps(x + j * cols + 32 * g), x1 = _mm512_loadu_ps(x + j * cols + 32 * g + 16);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(hi[i], x1, _mm512_fmadd_ps(lo[i], x0, acc[i][j]));
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) out[j * ld + i] = _mm512_reduce_add_ps(acc[i][j]);
}

template <int QS, int SS, int R>
inline void tile_tokens(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols, int64_t nt,
                        const float* e8m0, float* out, int64_t ld) {
  switch (nt) {
    case 1: tile<QS, SS, R, 1>(b, s, nblk, x, cols, e8m0, out, ld); break;
    case 2: tile<QS, SS, R, 2>(b, s, nblk, x, cols, e8m0, out, ld); break;
    case 3: tile<QS, SS, R, 3>(b, s, nblk, x, cols, e8m0, out, ld); break;
    default: tile<QS, SS, R, 4>(b, s, nblk, x, cols, e8m0, out, ld); break;
  }
}

// QS: bytes from one block's 16 code bytes to the next's; SS: the same for the scale bytes. The
// Hugging Face layout keeps codes and scales in two arrays (QS 16, SS 1); ggml's MXFP4 block is the
// scale byte then the 16 code bytes (QS = SS = 17), read through q = base + 1, s = base.
template <int QS, int SS>
void rows_any(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
              int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / 32;
  const float* e8m0 = e8m0_table();
  if (n == 1) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_dot4<QS, SS>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xp, e8m0, out + r);
    for (; r < r1; ++r) out[r] = row_dot1<QS, SS>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xp, e8m0);
    return;
  }
  // Tokens in blocks whose activations stay in L2 (48 x 2880 f32 = 553 KB of 1 MB).
  constexpr int64_t kTokenBlock = 48;
  constexpr int kRows = 4, kTokens = 4;
  for (int64_t tb = 0; tb < n; tb += kTokenBlock) {
    const int64_t te = n - tb < kTokenBlock ? n : tb + kTokenBlock;
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows)
      for (int64_t t = tb; t < te; t += kTokens)
        tile_tokens<QS, SS, kRows>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xp + t * cols, cols, te - t,
                                   e8m0, out + t * ld + r, ld);
    for (; r < r1; ++r)
      for (int64_t t = tb; t < te; t += kTokens)
        tile_tokens<QS, SS, 1>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xp + t * cols, cols, te - t, e8m0,
                               out + t * ld + r, ld);
  }
}

}  // namespace

void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
                int64_t ld, int64_t r0, int64_t r1) {
  rows_any<16, 1>(blocks, scales, cols, xp, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
                     int64_t r1) {
  rows_any<kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, x, n, out, ld, r0, r1);
}

// q8: prefill-sized products go to the AVX2 int8 GEMM first (kernels.h avx2::mxfp4_q8_gemm; 159-199 GFLOP/s a
// core against this set's 1-row kernel's 84-103, bench/RESULTS.md issue 17), the rest to the zmm row kernel.
void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  r0 = avx2::mxfp4_q8_gemm(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
  mxfp4_rows_q8_512<false>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  r0 = avx2::mxfp4_ggml_q8_gemm(blocks, cols, xq, xd, n, out, ld, r0, r1);
  mxfp4_rows_q8_512<false, kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld, r0,
                                                                      r1);
}

}  // namespace gptoss::cpu::avx512
