#include "logit_bias.h"

#include <limits>

#include "../core/error.h"
#include "logprobs.h"

namespace gptoss {

void add_logit_bias(float* row, int64_t vocab, const LogitBias& bias) {
  if (bias.ids.size() != bias.deltas.size()) throw range_error("logit bias: ids and deltas differ in length");
  for (size_t j = 0; j < bias.ids.size(); ++j) {
    const int32_t id = bias.ids[j];
    if (id < 0 || id >= vocab) throw range_error("logit bias: id " + std::to_string(id) + " is outside the vocabulary");
    row[id] += bias.deltas[j];
  }
  if (bias.allow.empty()) return;
  if (int64_t(bias.allow.size()) * 32 < vocab) throw range_error("logit bias: the allow mask is shorter than the vocabulary");
  for (int64_t i = 0; i < vocab; ++i)
    if (!((bias.allow[size_t(i >> 5)] >> (i & 31)) & 1u)) row[i] = -std::numeric_limits<float>::infinity();
}

void apply_logit_bias(Backend& be, const Tensor& logits, int64_t row, const LogitBias& bias, std::vector<float>& host) {
  copy_logit_row(be, logits, row, host);
  std::vector<float> biased(host);
  add_logit_bias(biased.data(), int64_t(biased.size()), bias);
  Tensor dst = logits.rows(row, 1);
  be.copy_from_host(dst, biased.data(), biased.size() * sizeof(float));
}

}  // namespace gptoss
