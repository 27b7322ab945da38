// The row driver shared by the per-ISA matvec/matmul files: for each weight row in [r0, r1), the n
// tokens are taken in blocks of up to 4 so one weight load feeds 1-4 accumulators, and the row's
// dot products land in out[token * ld + row]. The ISA files supply only the dot-product kernel,
// `dot(std::integral_constant<int, NT>, row, x_block, res)` for NT = 1..4 tokens.
#pragma once
#include <cstdint>
#include <type_traits>

namespace gptoss::cpu {

template <typename Dot>
inline void for_rows_by_token_blocks(int64_t r0, int64_t r1, int64_t n, int64_t cols, const float* x, float* out,
                                     int64_t ld, Dot&& dot) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t = 0; t < n; t += 4) {
      float res[4];
      const float* xt = x + t * cols;
      const int64_t nt = n - t < 4 ? n - t : 4;
      switch (nt) {
        case 1: dot(std::integral_constant<int, 1>{}, r, xt, res); break;
        case 2: dot(std::integral_constant<int, 2>{}, r, xt, res); break;
        case 3: dot(std::integral_constant<int, 3>{}, r, xt, res); break;
        default: dot(std::integral_constant<int, 4>{}, r, xt, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
  }
}

// Software prefetch for R interleaved row streams (rows of `rb` bytes, contiguous; a kernel reads block g
// of rows r = 0..R-1 together, blocks `Step` bytes apart): the byte `ahead` bytes past block g of row r,
// running on into row r + R past the row's end (the rows the next pass reads). Issued only when that byte
// is the first of a cache line inside this block's Step bytes, so every line is fetched once whatever
// the block size. A fixed every-4-blocks rule was right for 16-byte blocks only: with ggml's 17-byte
// blocks it skipped one line in 17, each then a demand miss from DRAM (the 4-row MXFP4 matvec from DRAM:
// 7-8 GB/s a core with that rule, 12.7-12.9 with this one; bench/RESULTS.md).
template <int Step, int R>
inline void prefetch_rows(const uint8_t* b, int64_t rb, int64_t g, int64_t ahead) {
  const int64_t off = int64_t(Step) * g + ahead;
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = off < rb ? b + r * rb + off : b + (R + r) * rb + off - rb;
    if ((reinterpret_cast<uintptr_t>(p) & 63) < uintptr_t(Step)) __builtin_prefetch(p, 0, 3);
  }
}

}  // namespace gptoss::cpu
