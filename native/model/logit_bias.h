// A per-draw additive logit bias: OpenAI's logit_bias, and the presence / frequency penalties the
// caller turns into one (lib/penalties.ts); and a mask of the ids a draw may take (structured outputs,
// lib/grammar: every other id's logit becomes -infinity). Added to the logits row a token is drawn from, after any
// copy of that row for log-probabilities (which stay the model's own) and before temperature and the
// other sampling options. Applied on the host: the row is read back, the entries added, the row written
// again (one row each way; the few requests that ask pay for it).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/tensor.h"
#include "backend.h"

namespace gptoss {

struct LogitBias {
  std::vector<int32_t> ids;   // in the vocabulary (checked where it is parsed); repeats add up
  std::vector<float> deltas;  // finite, one an id
  std::vector<uint32_t> allow;  // empty, or a bitset of ceil(V / 32) words: bit id clear -> -infinity
  bool empty() const { return ids.empty() && allow.empty(); }
};

// Adds `bias` to `row` (host, `vocab` floats).
void add_logit_bias(float* row, int64_t vocab, const LogitBias& bias);

// Adds `bias` to row `row` of logits f32 [r, V] on be's device, in place. `host` gets the row as it was
// before (resized to V): a caller that reports log-probabilities reads them from it.
void apply_logit_bias(Backend& be, const Tensor& logits, int64_t row, const LogitBias& bias, std::vector<float>& host);

}  // namespace gptoss
