// Synthetic gpt-oss weights: random tensors generated in memory, for benchmarking model shapes whose
// checkpoint is not at hand (gpt-oss-120b is ~65 GB). Not for inference: the weights mean nothing.
//
// Byte for byte what scripts/checkpoint-writer.mjs writes for the same config and seed: one
// xoshiro128** stream per tensor (seeded from "seed:<seed>" and "stream:<tensor name>"), the same
// inits (checkpointTensors: normal via a 65536-entry inverse-CDF table, raw bytes for MXFP4 blocks,
// an exponent range for the scales). Model::synthetic (gpt_oss.h) builds a whole model from these.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace gptoss {

// How the writer draws one tensor's data (checkpointTensors' `init`).
struct SyntheticInit {
  enum class Kind : uint8_t { Normal, Bytes, Range };
  Kind kind = Kind::Bytes;
  double mean = 0, std = 1;  // Normal: bf16(f32(mean + std * table[16-bit draw])), two draws a word, low half first
  int lo = 0, hi = 255;      // Range: lo + ((byte * (hi - lo + 1)) >> 8), one byte of the stream a value
};

// The init of a checkpoint tensor by its Hugging Face name (`..._blocks` / `..._scales` for MXFP4).
// Throws for a name the writer does not produce.
SyntheticInit synthetic_init(const ModelConfig& c, const std::string& name);

// The writer's default E8M0 exponent ranges [lo, hi]: gate_up 122..124 and down 120..122 at fan-in 256,
// shifted by round(log2(fan_in / 256) / 2).
void synthetic_scale_ranges(const ModelConfig& c, int gate_up[2], int down[2]);

// One tensor's data as the writer draws it: a stream of 32-bit words (normal: two bf16 values a word,
// low half first; bytes and range: four bytes a word, little-endian). Any piece of the stream can be
// generated on its own (xoshiro128** jumps ahead in O(log n)), so threads split big tensors and the
// bytes never depend on how they were split.
class SyntheticTensor {
 public:
  SyntheticTensor(uint64_t seed, const std::string& name, const SyntheticInit& init, uint64_t bytes);
  uint64_t bytes() const { return bytes_; }
  uint64_t words() const;  // stream words the whole tensor takes
  // Writes the bytes that stream words [first_word, first_word + count) make into data (the tensor's
  // start; the range is clipped to the tensor).
  void fill(uint8_t* data, uint64_t first_word, uint64_t count) const;

 private:
  uint32_t state_[4];
  SyntheticInit init_;
  uint64_t bytes_;
  const uint16_t* normal_lut_ = nullptr;  // Normal: bf16 bits of mean + std * table[i], i < 65536
  uint8_t range_lut_[256] = {};          // Range: value of each stream byte
};

// The whole data of checkpoint tensor `name` (as weight_slots lists it for the config; MXFP4 as
// `..._blocks` / `..._scales`), generated in pieces of `chunk_words` stream words: for tests against
// the writer's bytes. RangeError for a name the config has no tensor for.
std::vector<uint8_t> synthetic_tensor(const ModelConfig& c, uint64_t seed, const std::string& name, uint64_t chunk_words);

}  // namespace gptoss
