// AVX2 prefill product as a small GEMM (compiled with -mavx2 -mfma; included by the *_avx2.cpp row
// kernels): out[t*ld + r] = sum_c W[r, c] x[t, c] for rows [r0, r1) and n tokens, W in any storage
// form that a `decode` callback widens to f32.
//
// The row kernels' tiles sum along a row (vector lanes = columns): each decoded (widened, scaled)
// weight vector feeds 1-3 tokens, and the register file (decoded vectors + sums + tables) spills; on
// AVX2 they reached ~50-70% of the FMA peak. Here, as in a BLAS micro-kernel:
//  - the activations are transposed once a call to [cols][8V] per group of 8V tokens (V = 1..3
//    vectors; token lanes, zero past n), so one vector holds one column of 8 tokens;
//  - kPanelRows rows are decoded to f32 (scaled) kPanelCols columns at a time (1.5 KB, in L1; a short
//    chunk lets the out-of-order core overlap the next chunk's decode with this one's FMAs);
//  - the inner loop takes, per column, V activation vectors and kPanelRows broadcast weights into
//    kPanelRows x V sums (V = 2: 12 FMAs per 2 loads + 6 broadcasts, 15 of the 16 registers; V = 3
//    runs 3 rows at a time).
// Decoding costs one pass over each weight per call (amortized over every token), where the tiles
// paid a multiply per 3 FMAs. The columns are whatever order `decode` writes them in, as long as x
// is in the same order (the MXFP4 kernels' permuted activations).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "simd_avx2.h"

namespace gptoss::cpu::avx2 {
namespace {

constexpr int kPanelRows = 6;
constexpr int64_t kPanelCols = 64;
// How far ahead of its decode a panel prefetches each row (panel_prefetch), in 32-column blocks.
constexpr int64_t kPanelAheadBlocks = 16;

// GPTOSS_CPU_PANEL=0 keeps the row kernels' tiles at every token count (A/B runs in one build).
inline bool panel_disabled() {
  static const bool off = [] {
    const char* v = std::getenv("GPTOSS_CPU_PANEL");
    return v != nullptr && v[0] == '0';
  }();
  return off;
}

// GPTOSS_CPU_PANEL=tokens: the MXFP4 kernels use the token-lane panel (panel_rows) instead of the
// column-lane one (panel_rows_dot) they use by default (an A/B aid, as above).
inline bool panel_token_lanes() {
  static const bool on = [] {
    const char* v = std::getenv("GPTOSS_CPU_PANEL");
    return v != nullptr && std::string_view(v) == "tokens";
  }();
  return on;
}

// 8 x 8 transpose: rows r[0..7] (8 floats each) -> columns.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Tokens [t0, t0 + 8V) of x [n, cols] (rows past n read as zero; cols % 8 == 0) -> xt [cols][8V].
inline void transpose_tokens(const float* x, int64_t n, int64_t cols, int64_t t0, int v, float* xt) {
  const int64_t w = 8 * v;
  for (int s = 0; s < v; ++s)
    for (int64_t c = 0; c < cols; c += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int64_t t = t0 + 8 * s + i;
        r[i] = t < n ? _mm256_loadu_ps(x + t * cols + c) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(xt + (c + i) * w + 8 * s, r[i]);
    }
}

// part[R][V][8] += sum over kc columns of wd[r * kPanelCols + c] * xt[c][8V]. One flat array and
// fully unrolled loops: GCC otherwise keeps a 6 x 2 array of sums in registers *and* stores every one
// of them to the stack each column.
template <int R, int V>
inline void panel_kernel(const float* wd, const float* xt, int64_t kc, float* part) {
  __m256 acc[R * V];
#pragma GCC unroll 16
  for (int i = 0; i < R * V; ++i) acc[i] = _mm256_loadu_ps(part + 8 * i);
  for (int64_t c = 0; c < kc; ++c) {
    __m256 xv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) xv[v] = _mm256_loadu_ps(xt + c * 8 * V + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(wd + r * kPanelCols + c);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r * V + v] = _mm256_fmadd_ps(b, xv[v], acc[r * V + v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R * V; ++i) _mm256_storeu_ps(part + 8 * i, acc[i]);
}

// Rows [0, rows) of the panel (rows <= kPanelRows), V vectors of tokens; V = 3 takes the rows 3 at a
// time (9 sums + 3 activations + 1 broadcast). Not inlined: inside the caller the decode's constants
// stay live across this loop and push sums out to the stack (measured: 60 vs 119 GFLOP/s at n = 16).
template <int V>
__attribute__((noinline)) void panel_kernel_rows(int rows, const float* wd, const float* xt, int64_t kc, float* part) {
  if constexpr (V == 3) {
    for (int r = 0; r < rows; r += 3) {
      const float* w = wd + r * kPanelCols;
      float* p = part + r * V * 8;
      switch (rows - r) {
        case 1: panel_kernel<1, 3>(w, xt, kc, p); break;
        case 2: panel_kernel<2, 3>(w, xt, kc, p); break;
        default: panel_kernel<3, 3>(w, xt, kc, p); break;
      }
    }
  } else {
    switch (rows) {
      case 1: panel_kernel<1, V>(wd, xt, kc, part); break;
      case 2: panel_kernel<2, V>(wd, xt, kc, part); break;
      case 3: panel_kernel<3, V>(wd, xt, kc, part); break;
      case 4: panel_kernel<4, V>(wd, xt, kc, part); break;
      case 5: panel_kernel<5, V>(wd, xt, kc, part); break;
      default: panel_kernel<6, V>(wd, xt, kc, part); break;
    }
  }
}

// Software prefetch for a panel's decode: called per block (`step` bytes apart) at byte `off` of a row
// of `rb` bytes starting at `row`, it fetches the line holding byte off + ahead, running on into the
// same row of the next panel (kPanelRows rows on) past the row's end; only when that byte starts a line,
// so each line is fetched once. The panel reads 6 rows a chunk (a few lines each) between long stretches
// of FMAs: without this, the weights' loads were demand misses from DRAM (43% of the decode's samples
// on the first scale-byte load).
inline void panel_prefetch(const uint8_t* row, int64_t rb, int64_t off, int64_t step, int64_t ahead) {
  const int64_t o = off + ahead;
  const uint8_t* p = o < rb ? row + o : row + kPanelRows * rb + (o - rb);
  if ((reinterpret_cast<uintptr_t>(p) & 63) < uintptr_t(step)) __builtin_prefetch(p, 0, 3);
}

struct PanelScratch {
  std::vector<float> xt, wd, part;
};
inline PanelScratch& panel_scratch() {
  thread_local PanelScratch s;
  return s;
}

// decode(row, c0, kc, dst): W[row, c0 .. c0 + kc) as f32 (scaled) into dst (c0 % kPanelCols == 0,
// kc <= kPanelCols, kc % 8 == 0). cols % 8 == 0.
template <typename Decode>
void panel_rows(int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1,
                Decode&& decode) {
  // Token groups: 16 tokens (V = 2) while more than 24 remain, then one group of 8, 16 or 24.
  struct Group {
    int64_t t0;
    int v;
    int64_t xo, po;  // offsets in xt and part
  };
  std::vector<Group> gs;
  gs.reserve(size_t(n / 16 + 2));
  int64_t xsize = 0, psize = 0;
  for (int64_t t = 0, rem = n; rem > 0;) {
    const int64_t take = rem > 24 ? 16 : rem;
    const int v = int((take + 7) / 8);
    gs.push_back({t, v, xsize, psize});
    xsize += cols * 8 * v;
    psize += kPanelRows * 8 * v;
    t += take;
    rem -= take;
  }
  PanelScratch& sc = panel_scratch();
  sc.xt.resize(size_t(xsize));
  sc.wd.resize(size_t(kPanelRows * kPanelCols));
  sc.part.resize(size_t(psize));
  for (const Group& g : gs) transpose_tokens(x, n, cols, g.t0, g.v, sc.xt.data() + g.xo);
  float* wd = sc.wd.data();
  float* part = sc.part.data();
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int rows = int(std::min<int64_t>(kPanelRows, r1 - r));
    std::fill(sc.part.begin(), sc.part.end(), 0.f);
    for (int64_t c0 = 0; c0 < cols; c0 += kPanelCols) {
      const int64_t kc = std::min(kPanelCols, cols - c0);
      for (int i = 0; i < rows; ++i) decode(r + i, c0, kc, wd + i * kPanelCols);
      for (const Group& g : gs) {
        const float* xt = sc.xt.data() + g.xo + c0 * 8 * g.v;
        float* p = part + g.po;
        switch (g.v) {
          case 1: panel_kernel_rows<1>(rows, wd, xt, kc, p); break;
          case 2: panel_kernel_rows<2>(rows, wd, xt, kc, p); break;
          default: panel_kernel_rows<3>(rows, wd, xt, kc, p); break;
        }
      }
    }
    for (const Group& g : gs) {
      const float* p = part + g.po;
      for (int ri = 0; ri < rows; ++ri)
        for (int lane = 0; lane < 8 * g.v; ++lane) {
          const int64_t t = g.t0 + lane;
          if (t < n) out[t * ld + r + ri] = p[ri * 8 * g.v + lane];
        }
    }
  }
}

// ---- columns in the lanes (the MXFP4 prefill) ----
// The same decoded kPanelRows-row panel, read the other way: a vector holds 8 columns of one row (as
// decoded) or of one token's activations (as stored, no transposed copy), and a kPanelRows x 2 register
// tile sums row x token products lane by lane; each (row, token) vector is summed across its lanes once,
// at the end of the row panel. Every token count fills every lane (the token-lane panel above runs T
// tokens in 8 ceil(T / 8) lanes: an expert's 17 tokens in 24, 71% of the FMAs useful, and 1-8 tokens
// through a 6 x 1 kernel with 7 loads per 6 FMAs), which suits the MoE, where each expert gets the
// routing's uneven share of the tokens (~16 +- 4 of 128 at top-4 of 32). Columns are decoded
// kDotCols at a time (3 KB of f32, L1) and every token's kDotCols activations (L1/L2) run against them.
constexpr int64_t kDotCols = 128;

// part[(r * pn + u) * 8 ..] += lanes of sum over kc columns of wd[r * kDotCols + c] * x[u * xs + c].
template <int R, int U>
inline void dot_kernel(const float* wd, const float* x, int64_t xs, int64_t kc, float* part, int64_t pn) {
  __m256 acc[R * U];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[r * U + u] = _mm256_loadu_ps(part + (r * pn + u) * 8);
  for (int64_t c = 0; c < kc; c += 8) {
    __m256 xv[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) xv[u] = _mm256_loadu_ps(x + u * xs + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m256 w = _mm256_loadu_ps(wd + r * kDotCols + c);
      // One load for the U FMAs: GCC otherwise folds the load into each FMA (U loads a weight vector;
      // 14 loads per 12 FMAs at U = 2, load-bound: measured 70-79 GFLOP/s against 100+ in a register).
      if constexpr (U > 1) asm("" : "+x"(w));
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[r * U + u] = _mm256_fmadd_ps(w, xv[u], acc[r * U + u]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) _mm256_storeu_ps(part + (r * pn + u) * 8, acc[r * U + u]);
}

// All n tokens against rows [0, rows) of the decoded chunk: token pairs; an odd count's last three
// tokens as rows x 3 tiles of at most 3 rows (9 sums; an R x 1 tile takes R + 1 loads per R FMAs). Not
// inlined (for the same reason as panel_kernel_rows).
template <int R>
__attribute__((noinline)) void dot_tokens(const float* wd, const float* x, int64_t cols, int64_t n, int64_t kc,
                                          float* part) {
  const int64_t pairs_end = n % 2 != 0 && n >= 3 ? n - 3 : n - n % 2;
  int64_t t = 0;
  for (; t < pairs_end; t += 2) dot_kernel<R, 2>(wd, x + t * cols, cols, kc, part + t * 8, n);
  if (n - t == 3) {
    constexpr int R0 = R < 3 ? R : 3;
    dot_kernel<R0, 3>(wd, x + t * cols, cols, kc, part + t * 8, n);
    if constexpr (R > 3) dot_kernel<R - 3, 3>(wd + 3 * kDotCols, x + t * cols, cols, kc, part + (3 * n + t) * 8, n);
  } else if (t < n) {
    dot_kernel<R, 1>(wd, x + t * cols, cols, kc, part + t * 8, n);
  }
}

// As panel_rows (same decode callback, with kc <= kDotCols), columns in the lanes; x [n, cols] as stored.
template <typename Decode>
void panel_rows_dot(int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1,
                    Decode&& decode) {
  PanelScratch& sc = panel_scratch();
  sc.wd.resize(size_t(kPanelRows * kDotCols));
  sc.part.resize(size_t(kPanelRows * n * 8));
  float* wd = sc.wd.data();
  float* part = sc.part.data();
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int rows = int(std::min<int64_t>(kPanelRows, r1 - r));
    std::fill(sc.part.begin(), sc.part.end(), 0.f);
    for (int64_t c0 = 0; c0 < cols; c0 += kDotCols) {
      const int64_t kc = std::min(kDotCols, cols - c0);
      for (int i = 0; i < rows; ++i) decode(r + i, c0, kc, wd + i * kDotCols);
      const float* xc = x + c0;
      switch (rows) {
        case 1: dot_tokens<1>(wd, xc, cols, n, kc, part); break;
        case 2: dot_tokens<2>(wd, xc, cols, n, kc, part); break;
        case 3: dot_tokens<3>(wd, xc, cols, n, kc, part); break;
        case 4: dot_tokens<4>(wd, xc, cols, n, kc, part); break;
        case 5: dot_tokens<5>(wd, xc, cols, n, kc, part); break;
        default: dot_tokens<6>(wd, xc, cols, n, kc, part); break;
      }
    }
    for (int ri = 0; ri < rows; ++ri)
      for (int64_t t = 0; t < n; ++t) out[t * ld + r + ri] = hsum(_mm256_loadu_ps(part + (ri * n + t) * 8));
  }
}

}  // namespace
}  // namespace gptoss::cpu::avx2
