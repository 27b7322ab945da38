// Token log-probabilities: the log-softmax of a logit row (the raw model distribution, before
// temperature, top-p or top-k, as vLLM reports them by default), at the drawn id and at the row's
// `top` most likely ids. Computed on the host from a row copied back (a device row is one copy of
// vocab floats), for the few items that ask (stepLogprobs, Session.logprobs, the server's
// `logprobs`); each backend's logits are rows of f32 [r, V].
#pragma once
#include <cstdint>
#include <vector>

#include "../core/tensor.h"
#include "backend.h"

namespace gptoss {

constexpr int kMaxTopLogprobs = 20;  // OpenAI's top_logprobs limit

struct TokenLogprobs {
  float logprob = 0.f;                // of the drawn id
  std::vector<int32_t> top_ids;       // the `top` most likely ids, most likely first (ties: lower id first)
  std::vector<float> top_logprobs;
};

// From a host row of `vocab` finite-or-(-inf) logits (a row the sampler drew from: checked already).
TokenLogprobs row_logprobs(const float* row, int64_t vocab, int32_t id, int top);

// Row `row` of logits f32 [r, V] on `be`'s device to `host` (resized to V).
void copy_logit_row(Backend& be, const Tensor& logits, int64_t row, std::vector<float>& host);

}  // namespace gptoss
