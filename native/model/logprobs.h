// Token log-probabilities: the log-softmax of a logit row (the raw model distribution, before
// temperature, top-p or top-k, as vLLM reports them by default), at the drawn id and at the row's
// `top` most likely ids, for the few items that ask (stepLogprobs, Session.logprobs, the server's
// `logprobs`); each backend's logits are rows of f32 [r, V]. The row's statistics (its log-sum-exp
// and top entries: Backend::logprob_top, RowTop) come from the device where the backend has a kernel
// for them (CUDA), else from the row copied back; the drawn id's logit is one float.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/tensor.h"

namespace gptoss {

class Backend;

constexpr int kMaxTopLogprobs = 20;  // OpenAI's top_logprobs limit

// A row's log-sum-exp and its `top` largest entries as log-probabilities (larger first, the lower id
// on a tie): what the log-probabilities of any of its ids need beside that id's logit.
struct RowTop {
  float lse = 0.f;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
};

// From a host row of `vocab` finite-or-(-inf) logits.
RowTop row_top(const float* row, int64_t vocab, int top);

struct TokenLogprobs {
  float logprob = 0.f;                // of the drawn id
  std::vector<int32_t> top_ids;       // the `top` most likely ids, most likely first (ties: lower id first)
  std::vector<float> top_logprobs;
};

// From a host row of `vocab` finite-or-(-inf) logits (a row the sampler drew from: checked already).
TokenLogprobs row_logprobs(const float* row, int64_t vocab, int32_t id, int top);
// From a RowTop and the id's logit.
TokenLogprobs with_id(const RowTop& t, float logit);

// Row `row` of logits f32 [r, V] on `be`'s device to `host` (resized to V).
void copy_logit_row(Backend& be, const Tensor& logits, int64_t row, std::vector<float>& host);

}  // namespace gptoss
