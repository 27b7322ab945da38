// Token log-probabilities on the device (Backend::logprob_top, model/logprobs.h): a block a row computes the row's
// log-sum-exp and its top k entries, so that only k + 1 values a row cross to the host instead of the row.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

// For j < count: lse[j] = log sum exp of row rows[j] of logits [*, vocab]; top_ids[j * kMax + i] and
// top_logprobs[j * kMax + i] for i < tops[j] (<= kMax): its tops[j] largest entries (larger first, the lower id
// on a tie) and their log-probabilities. rows, tops and the outputs: device memory.
void launch_logprob_top(const float* logits, int vocab, const int32_t* rows, const int32_t* tops, int count, int kmax,
                        float* lse, int32_t* top_ids, float* top_logprobs, cudaStream_t stream);

}  // namespace gptoss::cuda
