// gpt-oss hyper-parameters as read from a Hugging Face config.json (lib/loader/config.ts parses and
// validates the JSON; napi/model.cpp copies the fields here).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gptoss {

struct ModelConfig {
  std::string source = "config";  // the config.json it came from: ConfigErrors name it
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;   // per expert
  int num_layers = 0;
  int num_experts = 0;
  int experts_per_token = 0;
  int num_heads = 0;           // query heads
  int num_kv_heads = 0;
  int head_dim = 0;
  int sliding_window = 0;      // tokens a sliding layer's query sees, itself included
  std::vector<uint8_t> layer_sliding;  // 1 = sliding_attention, 0 = full_attention (config layer_types)
  double rope_theta = 150000;
  // YaRN (rope_scaling): factor 32, original context 4096, beta_fast 32, beta_slow 1, truncate false.
  double rope_factor = 1;
  double rope_original_max_positions = 4096;
  double rope_beta_fast = 32;
  double rope_beta_slow = 1;
  bool rope_truncate = false;
  bool rope_yarn = true;
  float rms_norm_eps = 1e-5f;
  float swiglu_limit = 7.0f;
  int max_position_embeddings = 131072;
};

}  // namespace gptoss
