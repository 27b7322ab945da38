#include "logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../core/error.h"
#include "backend.h"

namespace gptoss {

RowTop row_top(const float* row, int64_t vocab, int top) {
  if (top < 0 || top > kMaxTopLogprobs)
    throw range_error("logprobs: top must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " + std::to_string(top));
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) m = std::max(m, row[i]);
  // log sum exp in double: 201088 terms summed in float lose ~1e-4 relative
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - double(m));
  RowTop out;
  out.lse = float(double(m) + std::log(sum));
  if (top == 0) return out;
  // the `top` largest by a bounded insertion (top <= 20): larger first, the lower id on a tie
  std::vector<int32_t> best;
  best.reserve(size_t(top) + 1);
  auto before = [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  for (int64_t i = 0; i < vocab; ++i) {
    const int32_t t = int32_t(i);
    if (int(best.size()) == top && !before(t, best.back())) continue;
    auto at = std::upper_bound(best.begin(), best.end(), t, before);
    best.insert(at, t);
    if (int(best.size()) > top) best.pop_back();
  }
  out.ids = best;
  for (int32_t t : best) out.logprobs.push_back(row[t] - out.lse);
  return out;
}

TokenLogprobs with_id(const RowTop& t, float logit) {
  TokenLogprobs out;
  out.logprob = logit - t.lse;
  out.top_ids = t.ids;
  out.top_logprobs = t.logprobs;
  return out;
}

TokenLogprobs row_logprobs(const float* row, int64_t vocab, int32_t id, int top) {
  if (id < 0 || id >= vocab) throw range_error("logprobs: id " + std::to_string(id) + " is outside the vocabulary");
  return with_id(row_top(row, vocab, top), row[id]);
}

void copy_logit_row(Backend& be, const Tensor& logits, int64_t row, std::vector<float>& host) {
  const int64_t vocab = logits.dim(1);
  host.resize(size_t(vocab));
  be.copy_to_host(logits.rows(row, 1), host.data(), size_t(vocab) * sizeof(float));
}

}  // namespace gptoss
