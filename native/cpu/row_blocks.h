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

}  // namespace gptoss::cpu
