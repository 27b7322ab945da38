// Device sampling: greedy argmax, or temperature + top-k + top-p + min-p with one draw, following
// the definition in native/cpu/sample.cpp exactly (rank by (p desc, index asc); the kept set is a
// prefix of that ranking; the draw walks kept tokens in index order: first i with cumsum > u*total).
#pragma once
#include "common.cuh"
#include "model/backend.h"

namespace gptoss::cuda {

// Whether a draw needs the (p desc, index asc) ranking: top-k below the vocabulary or top-p below 1 (the sort
// path); otherwise it is an unranked draw (temperature, min-p at most: the split kernels).
bool sample_ranked(int vocab, const SampleParams& params);
size_t sample_workspace_bytes(int vocab, const SampleParams& params);
// Writes the chosen token id to *result (device). No host sync. `counters`: the backend's
// last-block counters (common.cuh).
void launch_sample(const float* logits, int vocab, const SampleParams& params, float uniform, void* workspace,
                   int* counters, int32_t* result, cudaStream_t stream);

// Greedy draws for `count` rows of a batch's logits [*, vocab] at once, each row split over the vocabulary
// (the split draws' max kernel, then a block a row over its slices): result[i] = argmax of row rows[i] (lowest
// index on ties), or that row's code (model/backend.h). rows: device memory; workspace:
// argmax_rows_workspace_bytes(vocab, count).
size_t argmax_rows_workspace_bytes(int vocab, int count);
void launch_argmax_rows(const float* logits, int vocab, const int32_t* rows, int count, void* workspace,
                        int32_t* result, cudaStream_t stream);

// Draws for rows that need no ranking (top-k and top-p off: temperature and min-p), each row split over
// the vocabulary by the same three kernels launch_sample runs for one such row (so a row draws the same id
// either way): result[draws[i].out] = the id drawn from row draws[i].row (draws: device memory).
struct RowDraw {
  int row = 0, out = 0;
  float temperature = 1.f, min_p = 0.f, uniform = 0.f;
};
size_t sample_rows_workspace_bytes(int vocab, int count);
void launch_sample_rows(const float* logits, int vocab, const RowDraw* draws, int count, void* workspace,
                        int32_t* result, cudaStream_t stream);

// Pipelined batch draws (Backend::queue_sample_rows): for j < count, out[j] = ids[src[j]] (the j-th
// draw, code included) and tokens[rows[j]] = that id, or 0 for a code (the step reading it is dropped).
void launch_finish_rows(const int32_t* ids, const int32_t* src, const int32_t* rows, int count, int32_t* tokens,
                        int32_t* out, cudaStream_t stream);

}  // namespace gptoss::cuda
