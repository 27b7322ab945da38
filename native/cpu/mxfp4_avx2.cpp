// AVX2 MXFP4 row kernels (compiled with -mavx2 -mfma): the exact f32 path and the q8 path with
// vpmaddubsw. The decode and its layout are described in mxfp4_avx2.h.
#include "core/dtype.h"
#include "mxfp4_avx2.h"
#include "panel_avx2.h"

namespace gptoss::cpu {

namespace {
// bf16 encodings of the 16 E2M1 values (0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives): low and high byte.
inline __m256i bf16_low_table() {
  return _mm256_setr_epi8(0, 0, int8_t(0x80), int8_t(0xc0), 0, 0x40, int8_t(0x80), int8_t(0xc0),  //
                          0, 0, int8_t(0x80), int8_t(0xc0), 0, 0x40, int8_t(0x80), int8_t(0xc0),  //
                          0, 0, int8_t(0x80), int8_t(0xc0), 0, 0x40, int8_t(0x80), int8_t(0xc0),  //
                          0, 0, int8_t(0x80), int8_t(0xc0), 0, 0x40, int8_t(0x80), int8_t(0xc0));
}
inline __m256i bf16_high_table() {
  return _mm256_setr_epi8(0, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40,                                        //
                          int8_t(0x80), int8_t(0xbf), int8_t(0xbf), int8_t(0xbf), int8_t(0xc0), int8_t(0xc0),  //
                          int8_t(0xc0), int8_t(0xc0),                                                          //
                          0, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40,                                        //
                          int8_t(0x80), int8_t(0xbf), int8_t(0xbf), int8_t(0xbf), int8_t(0xc0), int8_t(0xc0),  //
                          int8_t(0xc0), int8_t(0xc0));
}

// The 32 weights of a block (unscaled E2M1 values) as 4 x 8 f32, in the kAvx2Pos order.
struct Decoded {
  __m256 w[4];
};
inline Decoded decode(const uint8_t* b, __m256i lo_table, __m256i hi_table) {
  const __m256i idx = nibbles(b);
  const __m256i lo = _mm256_shuffle_epi8(lo_table, idx), hi = _mm256_shuffle_epi8(hi_table, idx);
  const __m256i u0 = _mm256_unpacklo_epi8(lo, hi), u1 = _mm256_unpackhi_epi8(lo, hi);
  const __m256i top = _mm256_set1_epi32(int32_t(0xffff0000u));
  return {{_mm256_castsi256_ps(_mm256_slli_epi32(u0, 16)), _mm256_castsi256_ps(_mm256_and_si256(u0, top)),
           _mm256_castsi256_ps(_mm256_slli_epi32(u1, 16)), _mm256_castsi256_ps(_mm256_and_si256(u1, top))}};
}

// Per E8M0 byte s, the two 16-byte vpshufb tables (low bytes, then high bytes) of the bf16 encodings of
// the 16 E2M1 values times 2^(s-127): every such product is exact in bf16 (at most 2 significant bits;
// subnormal from s < 2, as f32 holds them; inf / NaN past f32's range, as the reference's f32 product
// gives), so a block decodes already scaled: 8 KB, in L1 while a matvec runs.
const uint8_t* scaled_bf16_tables() {
  static const std::vector<uint8_t> t = [] {
    std::vector<uint8_t> v(256 * 32);
    const float* e8m0 = e8m0_table();
    for (int s = 0; s < 256; ++s)
      for (int c = 0; c < 16; ++c) {
        const float f = e2m1_to_f32(uint8_t(c)) * e8m0[s];
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        v[size_t(32 * s + c)] = uint8_t(bits >> 16);
        v[size_t(32 * s + 16 + c)] = uint8_t(bits >> 24);
      }
    return v;
  }();
  return t.data();
}

// One row, one token (decode), the block decoded scaled (scaled_bf16_tables: two 16-byte table loads
// a block instead of a scale broadcast and an FMA): 4 FMAs a block into 8 accumulators (4 a block,
// two blocks alternating), so the FMA pipes take 4 ops a block instead of 5 (the products summed
// unscaled, then one FMA by the scale: 13.5-13.9 -> 14.1-14.5 GB/s a core, bench/RESULTS.md). QS / SS:
// bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1; ggml's 17-byte blocks
// 17 / 17, read as codes = base + 1, scales = base).
template <int QS = 16, int SS = 1>
inline float row_dot1_scaled(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, const uint8_t* tabs) {
  __m256 acc[2][4];
  for (int a = 0; a < 2; ++a)
    for (int q = 0; q < 4; ++q) acc[a][q] = _mm256_setzero_ps();
  auto block = [&](int64_t g, int a) {
    const uint8_t* t = tabs + 32 * s[g * SS];
    const __m256i lo_t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
    const __m256i hi_t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16)));
    const Decoded d = decode(b + QS * g, lo_t, hi_t);
    const float* xg = x + 32 * g;
    for (int q = 0; q < 4; ++q) acc[a][q] = _mm256_fmadd_ps(d.w[q], _mm256_loadu_ps(xg + 8 * q), acc[a][q]);
  };
  int64_t g = 0;
  for (; g + 2 <= nblk; g += 2) {
    block(g, 0);
    block(g + 1, 1);
  }
  if (g < nblk) block(g, 0);
  const __m256 s0 = _mm256_add_ps(_mm256_add_ps(acc[0][0], acc[1][0]), _mm256_add_ps(acc[0][1], acc[1][1]));
  const __m256 s1 = _mm256_add_ps(_mm256_add_ps(acc[0][2], acc[1][2]), _mm256_add_ps(acc[0][3], acc[1][3]));
  return avx2::hsum(_mm256_add_ps(s0, s1));
}

// One row, NT = 2..4 tokens: the decoded block is scaled once and feeds 4 FMAs per token.
template <int NT, int QS = 16, int SS = 1>
inline void row_dotn(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols,
                     const float* e8m0, float* res) {
  const __m256i lo_t = bf16_low_table(), hi_t = bf16_high_table();
  __m256 acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    Decoded d = decode(b + QS * g, lo_t, hi_t);
    const __m256 sc = _mm256_set1_ps(e8m0[s[g * SS]]);
    for (int q = 0; q < 4; ++q) d.w[q] = _mm256_mul_ps(d.w[q], sc);
    for (int j = 0; j < NT; ++j) {
      const float* xg = x + j * cols + 32 * g;
      acc[j][0] = _mm256_fmadd_ps(d.w[0], _mm256_loadu_ps(xg), acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(d.w[1], _mm256_loadu_ps(xg + 8), acc[j][1]);
      acc[j][0] = _mm256_fmadd_ps(d.w[2], _mm256_loadu_ps(xg + 16), acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(d.w[3], _mm256_loadu_ps(xg + 24), acc[j][1]);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = avx2::hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
}

// Two rows times T = 1..3 tokens (prefill): both rows' blocks are decoded and scaled once (8
// registers), then each token's activations feed both rows, taken straight from memory as the FMAs'
// operands: 8 FMAs per 4 activation loads, where one row times 4 tokens paid a load per FMA and
// streamed 4 tokens' activations (46 KB at 2880 columns) from L2 for every row.
template <int T, int QS = 16, int SS = 1>
inline void tile2(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols, const float* e8m0,
                  float* out, int64_t ld) {
  const __m256i lo_t = bf16_low_table(), hi_t = bf16_high_table();
  const int64_t rb = nblk * QS;
  __m256 acc[2][T];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    Decoded d0 = decode(b + QS * g, lo_t, hi_t), d1 = decode(b + rb + QS * g, lo_t, hi_t);
    const __m256 s0 = _mm256_set1_ps(e8m0[s[SS * g]]), s1 = _mm256_set1_ps(e8m0[s[SS * (nblk + g)]]);
    for (int q = 0; q < 4; ++q) {
      d0.w[q] = _mm256_mul_ps(d0.w[q], s0);
      d1.w[q] = _mm256_mul_ps(d1.w[q], s1);
    }
    for (int j = 0; j < T; ++j)
      for (int q = 0; q < 4; ++q) {
        const __m256 xv = _mm256_loadu_ps(x + j * cols + 32 * g + 8 * q);
        acc[0][j] = _mm256_fmadd_ps(d0.w[q], xv, acc[0][j]);
        acc[1][j] = _mm256_fmadd_ps(d1.w[q], xv, acc[1][j]);
      }
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < T; ++j) out[j * ld + i] = avx2::hsum(acc[i][j]);
}

// From this many tokens up, the prefill runs as panel_avx2.h's small GEMM (2 x 3 tile: 56-70 GFLOP/s
// a core at n = 4-8 and 58-68 at 16-64; panel 73 at n = 7, 83 at 8, 119 at 16, 131 at 64; bench/RESULTS.md).
constexpr int64_t kPanelMinTokens = 2;

constexpr uint8_t kPos[32] = {
    avx2_pos(0),  avx2_pos(1),  avx2_pos(2),  avx2_pos(3),  avx2_pos(4),  avx2_pos(5),  avx2_pos(6),  avx2_pos(7),
    avx2_pos(8),  avx2_pos(9),  avx2_pos(10), avx2_pos(11), avx2_pos(12), avx2_pos(13), avx2_pos(14), avx2_pos(15),
    avx2_pos(16), avx2_pos(17), avx2_pos(18), avx2_pos(19), avx2_pos(20), avx2_pos(21), avx2_pos(22), avx2_pos(23),
    avx2_pos(24), avx2_pos(25), avx2_pos(26), avx2_pos(27), avx2_pos(28), avx2_pos(29), avx2_pos(30), avx2_pos(31)};
}  // namespace

namespace avx2 {

const uint8_t* mxfp4_pos() { return kPos; }

namespace {
// QS / SS: bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1; ggml 17 / 17 with codes = base + 1, scales = base).
template <int QS, int SS>
void rows_any(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
              int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / 32;
  const float* e8m0 = e8m0_table();
  const uint8_t* tabs = scaled_bf16_tables();
  if (n == 1) {
    for (int64_t r = r0; r < r1; ++r)
      out[r] = row_dot1_scaled<QS, SS>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xp, tabs);
    return;
  }
  if (n >= kPanelMinTokens && !panel_disabled()) {
    // A row's blocks [c0 / 32, (c0 + kc) / 32) decoded and scaled, in the kAvx2Pos order xp is in.
    auto decode_chunk = [&](int64_t row, int64_t c0, int64_t kc, float* dst) {
      const uint8_t* b = blocks + row * nblk * QS;
      const uint8_t* s = scales + row * nblk * SS;
      for (int64_t g = c0 / 32, g1 = (c0 + kc) / 32; g < g1; ++g, dst += 32) {
        // Two chunks ahead (codes; the separate scale bytes of the Hugging Face form too).
        panel_prefetch(b, nblk * QS, QS * g, QS, QS * kPanelAheadBlocks);
        if constexpr (SS == 1) panel_prefetch(s, nblk, g, 1, kPanelAheadBlocks);
        const uint8_t* t = tabs + 32 * s[SS * g];
        const Decoded d = decode(b + QS * g, _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))),
                                 _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16))));
        for (int q = 0; q < 4; ++q) _mm256_storeu_ps(dst + 8 * q, d.w[q]);
      }
    };
    if (panel_token_lanes())
      panel_rows(cols, xp, n, out, ld, r0, r1, decode_chunk);
    else
      panel_rows_dot(cols, xp, n, out, ld, r0, r1, decode_chunk);
    return;
  }
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) {
    const uint8_t* b = blocks + r * nblk * QS;
    const uint8_t* s = scales + r * nblk * SS;
    int64_t t = 0;
    for (; t + 3 <= n; t += 3) tile2<3, QS, SS>(b, s, nblk, xp + t * cols, cols, e8m0, out + t * ld + r, ld);
    if (n - t == 2) tile2<2, QS, SS>(b, s, nblk, xp + t * cols, cols, e8m0, out + t * ld + r, ld);
    if (n - t == 1) tile2<1, QS, SS>(b, s, nblk, xp + t * cols, cols, e8m0, out + t * ld + r, ld);
  }
  if (r < r1)
    for_rows_by_token_blocks(r, r1, n, cols, xp, out, ld, [&](auto nt, int64_t row, const float* xt, float* res) {
      if constexpr (decltype(nt)::value == 1)
        res[0] = row_dot1_scaled<QS, SS>(blocks + row * nblk * QS, scales + row * nblk * SS, nblk, xt, tabs);
      else
        row_dotn<decltype(nt)::value, QS, SS>(blocks + row * nblk * QS, scales + row * nblk * SS, nblk, xt, cols, e8m0,
                                              res);
    });
}
}  // namespace

void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
                int64_t ld, int64_t r0, int64_t r1) {
  rows_any<16, 1>(blocks, scales, cols, xp, n, out, ld, r0, r1);
}

// ggml's 17-byte blocks: the scale byte, then the 16 code bytes (the same kernels, other strides).
void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* xp, int64_t n, float* out, int64_t ld,
                     int64_t r0, int64_t r1) {
  rows_any<kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xp, n, out, ld, r0, r1);
}

void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  mxfp4_rows_q8_impl<false>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  mxfp4_ggml_rows_q8_impl<false>(blocks, cols, xq, xd, n, out, ld, r0, r1);
}

int64_t mxfp4_q8_gemm(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                      int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  return q8_gemm_rows<false, 16, 1>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}
int64_t mxfp4_ggml_q8_gemm(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                           int64_t ld, int64_t r0, int64_t r1) {
  return q8_gemm_rows<false, kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld,
                                                                         r0, r1);
}

}  // namespace avx2
}  // namespace gptoss::cpu
