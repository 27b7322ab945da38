// What every kernel family includes: the role headers (arch ladder and vendor, launching,
// reductions, number formats, async copies, tensor-core tiles), the device-side error flags and the
// grid counters the backend owns. Kernels live in their family's .cu file.
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#include "arch.cuh"
#include "async_copy.cuh"
#include "convert.cuh"
#include "device.h"
#include "launch.cuh"
#include "mma.cuh"
#include "policy.h"
#include "reduce.cuh"
#include "shapes.h"

namespace gptoss::cuda {

// Device-side error flags (one int per backend, checked at synchronize()/copy_to_host()).
enum DeviceErrorBits : int {
  kErrTokenRange = 1,     // embedding: token id outside [0, vocab)
  kErrPositionRange = 2,  // kv_store / attention: position outside [0, ctx)
  kErrExpertRange = 4,    // moe: expert index outside [0, E)
};

// Grid-wide counters for the "last block finishes" pattern (one launch instead of a second
// reduction kernel): the backend owns kCountersTotal ints, zeroed once; each kernel family uses its
// own range, indexed by what its blocks reduce over (a token, a (token, kv head) pair).
enum CounterRange : int {
  kCountersRouter = 0,       // [64]: router top-k, one per token (multi-block path: n <= 64)
  kCountersAttention = 64,   // [2048]: split-KV decode, one per (token, kv head)
  kCountersArgmax = 2112,    // [1]: greedy sampling over the vocabulary
  kCountersNormGemv = 2113,  // [1]: add_rmsnorm + GEMV (one token), the block that writes x and normed
  kCountersMoe = 4096,       // [4096]: decode MoE down, one per (token, 16-row tile)
  kCountersMoeSize = kMoeTileCounters,
  kCountersTotal = 8192,
};
static_assert(kCountersArgmax - kCountersAttention >= kDecodeMaxPairs, "decode attention counters");
static_assert(kCountersMoe + kCountersMoeSize <= kCountersTotal, "decode MoE counters");

inline int ceil_div(int64_t a, int64_t b) { return int((a + b - 1) / b); }

}  // namespace gptoss::cuda
